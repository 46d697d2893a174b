"""Project tables (database alias ``projects``): projects, their sessions and Appion databases."""

from __future__ import annotations

from semc.models.fields import ClassicModel, flag, integer, ref, seq, text, varchar, xref

__all__ = [
    "Project",
    "ProcessingDB",
    "ProjectExperiment",
    "ProjectOwner",
    "ShareExperiment",
    "UserDetails",
    "AutoHost",
]


class Project(ClassicModel):
    name = varchar(255)
    short_description = text()
    long_description = text()
    category = text()
    funding = text()
    leginondb = varchar(50)
    hidden = flag()

    class Meta(ClassicModel.Meta):
        db_table = "projects"
        verbose_name = "project"

    def __str__(self) -> str:
        return self.name or f"project {self.pk}"


class ProcessingDB(ClassicModel):
    """The Appion database of a project (``appiondb``, conventionally ``ap<projectid>``)."""

    project = ref("Project", "projects", "project", related_name="processingdbs")
    appiondb = varchar(50)

    class Meta(ClassicModel.Meta):
        db_table = "processingdb"
        verbose_name = "processing database"


class ProjectExperiment(ClassicModel):
    """A Leginon session belonging to a project."""

    project = ref("Project", "projects", "project", related_name="experiments")
    session_id = xref("leginondata", "SessionData", "session")

    class Meta(ClassicModel.Meta):
        db_table = "projectexperiments"
        verbose_name = "project session"


class ProjectOwner(ClassicModel):
    project = ref("Project", "projects", "project")
    user_id = xref("leginondata", "UserData", "user")

    class Meta(ClassicModel.Meta):
        db_table = "projectowners"


class ShareExperiment(ClassicModel):
    user_id = xref("leginondata", "UserData", "user")
    session_id = xref("leginondata", "SessionData", "session")

    class Meta(ClassicModel.Meta):
        db_table = "shareexperiments"


class UserDetails(ClassicModel):
    user_id = xref("leginondata", "UserData", "user")
    title = text()
    institution = text()
    dept = text()
    address = text()
    city = text()
    statecountry = text()
    zip = text()
    phone = text()
    fax = text()
    url = text()

    class Meta(ClassicModel.Meta):
        db_table = "userdetails"
        verbose_name_plural = "user details"


class AutoHost(ClassicModel):
    """Classic "auto-run from Leginon" host configuration (not used by the daemon)."""

    hostname = text()
    appion_wrapper = text()
    ddalign_gpus = seq("ddalign_gpus")
    loop_max = integer()

    class Meta(ClassicModel.Meta):
        db_table = "autohosts"
