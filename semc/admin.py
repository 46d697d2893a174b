"""Django admin for inspecting results.

Classic Leginon/project/Appion tables are read-only here (the admin never
writes a facility's tables). Rows link to related rows: exposure -> session,
preset, camera, scope; CTF result -> exposure and run; aligned pair -> source
and result exposure. Cross-database references (plain integer columns) are
rendered as links too.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from semc import models as m
from semc.base.store import exposure_steps_requeue


def admin_link(model: type[Model], pk: int | None, label: str | None = None) -> str:
    """An HTML link to a row's admin page ("-" when there is no reference)."""
    if not pk:
        return "-"
    try:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])
    except NoReverseMatch:
        return str(pk)
    return format_html('<a href="{}">{}</a>', url, label or f"{model._meta.verbose_name} {pk}")


def fk_link(field: str, model_name: str | None = None):
    """A list_display column that links a same-database foreign key."""

    def column(self, obj):
        target = getattr(obj, field)
        pk = getattr(obj, f"{field}_id")
        model = type(target) if target is not None else obj._meta.get_field(field).related_model
        return admin_link(model, pk, str(target) if target is not None else None)

    column.short_description = model_name or field.replace("_", " ")
    column.admin_order_field = f"{field}_id"
    return column


def xref_link(field: str, model: type[Model], title: str):
    """A list_display column that links a cross-database integer reference."""

    def column(self, obj):
        return admin_link(model, getattr(obj, field))

    column.short_description = title
    column.admin_order_field = field
    return column


class ClassicAdmin(admin.ModelAdmin):
    """Read-only admin for a classic table."""

    list_per_page = 50
    show_full_result_count = False
    ordering = ("-id",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_list_display(self, request):
        if self.list_display != ("__str__",):
            return self.list_display
        fields = [f.name for f in self.model._meta.concrete_fields if not f.is_relation][:8]
        return fields


@admin.register(m.SessionData)
class SessionAdmin(ClassicAdmin):
    list_display = ("id", "name", "user_col", "comment", "image_path", "frame_path", "timestamp")
    list_filter = ("hidden",)
    search_fields = ("name", "comment")
    user_col = fk_link("user")


@admin.register(m.PresetData)
class PresetAdmin(ClassicAdmin):
    list_display = ("id", "name", "session_col", "magnification", "dose_e_per_a2", "defocus_um",
                    "exposure_time", "timestamp")
    list_filter = ("name",)
    search_fields = ("name", "session__name")
    session_col = fk_link("session")

    @admin.display(description="dose (e/Å²)")
    def dose_e_per_a2(self, obj):
        return None if obj.dose is None else round(obj.dose / 1e20, 3)

    @admin.display(description="defocus (µm)")
    def defocus_um(self, obj):
        return None if obj.defocus is None else round(obj.defocus * 1e6, 3)


_PICTURE_TITLES = {"thumb": "aligned micrograph", "spectrum": "power spectrum with the fitted rings",
                   "ctffit": "1-D CTF fit", "drift": "drift trajectory"}


def exposure_picture_url(image_id: int, kind: str) -> str:
    return reverse("dashboard:exposure_picture", args=[image_id, kind])


@admin.register(m.AcquisitionImageData)
class ExposureAdmin(ClassicAdmin):
    """Exposures, with their pictures (lazily rendered by the dashboard) and the viewer's hide/trash."""

    list_display = ("id", "thumbnail", "filename", "session_col", "preset_col", "camera_col", "scope_col",
                    "viewer_status", "timestamp")
    list_filter = ("preset__name",)
    search_fields = ("filename", "session__name", "preset__name")
    list_select_related = ("session", "preset")
    readonly_fields = ("results", "pictures")
    actions = ("reject_hidden", "reject_trash", "unreject")
    session_col = fk_link("session")
    preset_col = fk_link("preset")
    camera_col = fk_link("camera")
    scope_col = fk_link("scope")

    @admin.display(description="thumbnail")
    def thumbnail(self, obj):
        return format_html('<img src="{}" alt="" width="64" height="64" loading="lazy" '
                           'style="object-fit:contain;background:#000">', exposure_picture_url(obj.pk, "thumb"))

    @admin.display(description="viewer status")
    def viewer_status(self, obj):
        return (m.ViewerImageStatus.objects.filter(image_id=obj.pk).order_by("-id")
                .values_list("status", flat=True).first() or "-")

    @admin.display(description="results")
    def results(self, obj):
        from semc.web.dashboard.pictures import exposure_available

        _, found = exposure_available(obj.pk)
        if found is None:
            return "-"
        parts = []
        if found.aligned is not None:
            parts.append(format_html("aligned: {}", admin_link(m.AcquisitionImageData, found.aligned.pk,
                                                                found.aligned.filename)))
        if found.ctf is not None and found.ctf.defocus1 is not None and found.ctf.defocus2 is not None:
            resolution = found.ctf.ctffind4_resolution
            parts.append(format_html("CTF: {} µm mean defocus, {} Å astigmatism, fit to {}",
                                     round(0.5 * (found.ctf.defocus1 + found.ctf.defocus2) * 1e6, 3),
                                     round(abs(found.ctf.defocus2 - found.ctf.defocus1) * 1e10),
                                     f"{resolution:.1f} Å" if resolution and resolution < 1e5 else "-"))
        if found.drift_angstrom:
            from semc.web.dashboard.data import path_length

            xs, ys = found.drift_angstrom
            parts.append(format_html("drift: {} Å over {} frames", round(path_length(xs, ys), 2), len(xs)))
        return format_html_join(mark_safe("<br>"), "{}", ((part,) for part in parts)) if parts else "-"

    @admin.display(description="pictures")
    def pictures(self, obj):
        from semc.web.dashboard.pictures import exposure_available

        kinds, _ = exposure_available(obj.pk)
        if not kinds:
            return "no pictures yet"
        return format_html_join(
            "", '<figure style="display:inline-block;margin:0 .5em .5em 0"><img src="{}" alt="{}" '
            'style="max-width:336px;max-height:256px"><figcaption>{}</figcaption></figure>',
            ((exposure_picture_url(obj.pk, kind), _PICTURE_TITLES[kind], _PICTURE_TITLES[kind]) for kind in kinds))

    def has_reject_permission(self, request) -> bool:
        return request.user.has_perm("semc.change_viewerimagestatus")

    def _reject(self, request, queryset, status: str) -> None:
        from semc.web.dashboard.curation import exposures_reject

        count = exposures_reject(queryset.values_list("id", flat=True), status=status)
        self.message_user(request, f"viewer status '{status}' set on {count} image(s) (selected exposures, "
                                   f"their raw movies and aligned images)")

    @admin.action(description="Reject: hide the selected exposures (as the image viewer's hide)",
                  permissions=["reject"])
    def reject_hidden(self, request, queryset):
        self._reject(request, queryset, m.ViewerImageStatus.Status.HIDDEN)

    @admin.action(description="Reject: trash the selected exposures (as the image viewer's trash)",
                  permissions=["reject"])
    def reject_trash(self, request, queryset):
        self._reject(request, queryset, m.ViewerImageStatus.Status.TRASH)

    @admin.action(description="Un-reject: clear the viewer status of the selected exposures", permissions=["reject"])
    def unreject(self, request, queryset):
        from semc.web.dashboard.curation import exposures_unreject

        count = exposures_unreject(queryset.values_list("id", flat=True))
        self.message_user(request, f"viewer status cleared on {count} image(s)")


@admin.register(m.CameraEMData)
class CameraAdmin(ClassicAdmin):
    list_display = ("id", "session_col", "ccdcamera_col", "dimension_x", "dimension_y", "binning_x",
                    "nframes", "frame_time", "eer_frames", "tiff_frames", "frame_rotate", "frame_flip")
    session_col = fk_link("session")
    ccdcamera_col = fk_link("ccdcamera", "camera")


@admin.register(m.ScopeEMData)
class ScopeAdmin(ClassicAdmin):
    list_display = ("id", "session_col", "tem_col", "magnification", "high_tension", "defocus", "stage_a")
    session_col = fk_link("session")
    tem_col = fk_link("tem", "microscope")


@admin.register(m.ApCtfData)
class CtfAdmin(ClassicAdmin):
    list_display = ("id", "image_col", "acerun_col", "defocus1_um", "defocus2_um", "angle_astigmatism",
                    "ctffind4_resolution", "cross_correlation", "timestamp")
    search_fields = ("acerun__name",)
    list_filter = ("acerun__name",)
    acerun_col = fk_link("acerun", "run")
    image_col = xref_link("image_id", m.AcquisitionImageData, "exposure")

    @admin.display(description="defocus 1 (µm)")
    def defocus1_um(self, obj):
        return None if obj.defocus1 is None else round(obj.defocus1 * 1e6, 4)

    @admin.display(description="defocus 2 (µm)")
    def defocus2_um(self, obj):
        return None if obj.defocus2 is None else round(obj.defocus2 * 1e6, 4)


@admin.register(m.ApDDAlignImagePairData)
class PairAdmin(ClassicAdmin):
    list_display = ("id", "source_col", "result_col", "ddstackrun_col", "timestamp")
    search_fields = ("ddstackrun__runname",)
    source_col = xref_link("source_id", m.AcquisitionImageData, "source exposure")
    result_col = xref_link("result_id", m.AcquisitionImageData, "aligned exposure")
    ddstackrun_col = fk_link("ddstackrun", "run")


@admin.register(m.ApDDAlignStatsData)
class AlignStatsAdmin(ClassicAdmin):
    list_display = ("id", "image_col", "ddstackrun_col", "apix", "top_shift1_value", "median_shift_value")
    image_col = xref_link("image_id", m.AcquisitionImageData, "aligned exposure")
    ddstackrun_col = fk_link("ddstackrun", "run")


@admin.register(m.ApDDFrameTrajectoryData)
class TrajectoryAdmin(ClassicAdmin):
    list_display = ("id", "image_col", "ddstackrun_col", "number_of_positions", "last_x", "last_y")
    image_col = xref_link("image_id", m.AcquisitionImageData, "aligned exposure")
    ddstackrun_col = fk_link("ddstackrun", "run")


@admin.register(m.ApDDStackRunData)
class DDStackRunAdmin(ClassicAdmin):
    list_display = ("id", "runname", "session_col", "path_col", "params_col", "timestamp")
    search_fields = ("runname", "path__path")
    session_col = xref_link("session_id", m.SessionData, "session")
    path_col = fk_link("path")
    params_col = fk_link("params")


@admin.register(m.ApAceRunData)
class AceRunAdmin(ClassicAdmin):
    list_display = ("id", "name", "session_col", "path_col", "ctffind4_params_col", "hidden", "timestamp")
    search_fields = ("name", "path__path")
    session_col = xref_link("session_id", m.SessionData, "session")
    path_col = fk_link("path")
    ctffind4_params_col = fk_link("ctffind4_params", "CTFFIND4 parameters")


@admin.register(m.ApAppionJobData)
class JobAdmin(ClassicAdmin):
    list_display = ("id", "name", "jobtype", "status", "cluster", "clusterjobid", "user", "session_col")
    list_filter = ("status", "jobtype")
    search_fields = ("name", "user")
    session_col = xref_link("session_id", m.SessionData, "session")


@admin.register(m.ProjectExperiment)
class ProjectExperimentAdmin(ClassicAdmin):
    list_display = ("id", "project_col", "session_col")
    project_col = fk_link("project")
    session_col = xref_link("session_id", m.SessionData, "session")


@admin.register(m.ProcessingDB)
class ProcessingDBAdmin(ClassicAdmin):
    list_display = ("id", "project_col", "appiondb")
    project_col = fk_link("project")


_CUSTOM = {m.SessionData, m.PresetData, m.AcquisitionImageData, m.CameraEMData, m.ScopeEMData, m.ApCtfData,
           m.ApDDAlignImagePairData, m.ApDDAlignStatsData, m.ApDDFrameTrajectoryData, m.ApDDStackRunData,
           m.ApAceRunData, m.ApAppionJobData, m.ProjectExperiment, m.ProcessingDB}

for _model in (
    m.UserData, m.InstrumentData, m.CorrectorPlanData, m.NormImageData, m.DarkImageData, m.BrightImageData,
    m.PixelSizeCalibrationData, m.ViewerImageStatus, m.ObjIceThicknessData, m.ZeroLossIceThicknessData,
    m.Project, m.ProjectOwner, m.ShareExperiment, m.UserDetails, m.AutoHost,
    m.ApPathData, m.ScriptProgramName, m.ScriptUserName, m.ScriptHostName, m.ScriptProgramRun,
    m.ScriptParamName, m.ScriptParamValue, m.ApDDStackParamsData, m.ApCtfFind4ParamsData,
    m.ApCtfTiltParamsData, m.ApAssessmentRunData, m.ApAssessmentData,
):
    if _model not in _CUSTOM:
        admin.site.register(_model, ClassicAdmin)


class LedgerInline(admin.TabularInline):
    model = m.ExposureStep
    fields = ("exposure_id", "filename", "step", "state", "attempts", "last_error", "stored_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    show_change_link = True
    ordering = ("-exposure_id",)


@admin.register(m.ProcessingRun)
class ProcessingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "session_name", "preset", "status", "host", "pid", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "session_name", "rundir")
    readonly_fields = tuple(f.name for f in m.ProcessingRun._meta.concrete_fields)
    inlines = (LedgerInline,)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(m.ExposureStep)
class ExposureStepAdmin(admin.ModelAdmin):
    list_display = ("id", "exposure_col", "filename", "step", "state", "attempts", "run", "latency",
                    "stored_at")
    list_filter = ("step", "state", "run")
    search_fields = ("filename", "run__name", "run__session_name", "last_error")
    readonly_fields = tuple(f.name for f in m.ExposureStep._meta.concrete_fields)
    actions = ("requeue",)
    exposure_col = xref_link("exposure_id", m.AcquisitionImageData, "exposure")
    list_select_related = ("run",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="latency (s)")
    def latency(self, obj):
        value = obj.latency_s
        return None if value is None else round(value, 1)

    @admin.action(description="Requeue the selected failed or quarantined exposures")
    def requeue(self, request, queryset):
        count = exposure_steps_requeue(queryset)
        self.message_user(request, f"{count} exposure step(s) requeued")
