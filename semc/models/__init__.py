"""The data model: classic Leginon, project and Appion tables, and SEMC's own tables."""

from semc.models.appion import *  # noqa: F401,F403
from semc.models.leginon import *  # noqa: F401,F403
from semc.models.projects import *  # noqa: F401,F403
from semc.models.semc import *  # noqa: F401,F403
