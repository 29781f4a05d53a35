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


TEMPLATE_GLOBALS = {"status_label": status_label, "action_label": action_label, "kind_label": kind_label}
