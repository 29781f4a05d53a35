"""Translated labels for the values the store keeps as words (statuses, actions, kinds)."""

from __future__ import annotations

from flask_babel import gettext as _


def status_label(status: str) -> str:
    labels = {"proposed": _("proposed"), "approved": _("approved"), "rejected": _("rejected"),
              "skipped": _("skipped"), "posted": _("posted"), "failed": _("failed"), "withdrawn": _("withdrawn"),
              "opted_out": _("opted out"), "recorded": _("recorded")}
    return labels.get(status, status)


def action_label(action: str) -> str:
    labels = {"approve": _("approve"), "edit": _("edit + approve"), "reject": _("reject"), "skip": _("skip"),
              "withdraw": _("withdraw")}
    return labels.get(action, action)


def kind_label(kind: str) -> str:
    labels = {"species": _("species"), "genus": _("genus"), "family": _("family")}
    return labels.get(kind, kind)


def http_error_words(code: int) -> tuple[str | None, str | None]:
    """An HTTP error's name and Werkzeug's stock description, translated (None for codes we never send)."""
    words = {
        400: (_("Bad request"), _("The request could not be understood. Reload the page and try again.")),
        403: (_("Forbidden"), _("You may not open this page.")),
        404: (_("Not found"), _("There is nothing at this address.")),
        405: (_("Method not allowed"), _("This address does not take that kind of request.")),
        413: (_("Request too large"), _("What was sent is too large.")),
        500: (_("Internal server error"), _("Something went wrong on the review server; nothing was posted. "
                                           "Try again.")),
    }
    return words.get(code, (None, None))


TEMPLATE_GLOBALS = {"status_label": status_label, "action_label": action_label, "kind_label": kind_label}
