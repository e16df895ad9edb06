"""The trial administration's link on the home page (imrtrial.home), with its pages' rule."""

from imrtrial import access
from imrtrial.home import Link, register

register(
    Link(
        "Trial administration",
        "staff:overview",
        access.may_administer,
        order=85,
        style="btn-outline-primary",
    )
)
