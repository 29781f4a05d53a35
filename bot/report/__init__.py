"""Outcome tracking, the audit report and withdrawal of a model version's posts."""

from bot.report.build import build_report
from bot.report.outcomes import refresh_outcomes
from bot.report.retract import Retraction, retract_model_version, withdraw_post

__all__ = ["Retraction", "build_report", "refresh_outcomes", "retract_model_version", "withdraw_post"]
