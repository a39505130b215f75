"""The outcome of a confirmation, for the party that sent it."""

from aanspraak.models import Party
from confirmations.models import Confirmation


def confirmation_outcome(sender: Party, receive_id: str) -> Confirmation | None:
    """The sender's confirmation (or, failing that, activation) with this receive id; None
    for anyone else's, exactly as for a missing one."""
    return (
        Confirmation.objects.filter(sender=sender, receive_id=receive_id)
        .only("receive_id", "state", "reason", "kind")
        .order_by("-kind")  # "confirmation" before "activation"
        .first()
    )
