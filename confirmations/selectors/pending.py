"""Read-side questions about pending confirmations."""

import datetime as dt

from django.conf import settings
from django.utils import timezone

from confirmations.models import Confirmation, ConfirmationState


def has_overdue_pending(age_seconds: float | None = None) -> bool:
    """Whether a confirmation has been pending for longer than ``age_seconds`` (default
    ``HUB_CONFIRMATION_SWEEP_AGE``); uses the partial index on pending rows."""
    age = settings.HUB_CONFIRMATION_SWEEP_AGE if age_seconds is None else age_seconds
    cutoff = timezone.now() - dt.timedelta(seconds=age)
    return Confirmation.objects.filter(
        state=ConfirmationState.PENDING, received_at__lte=cutoff
    ).exists()
