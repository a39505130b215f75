"""Celery tasks of the entitlements app: thin shells that take ids and call services."""

from celery import shared_task

from entitlements import dispatch
from entitlements.services.expiry import expire_due


@shared_task(name="entitlements.tasks.drain_recipient")
def drain_recipient(recipient_id: int) -> dict:
    """Send the due outbound messages of one recipient (see entitlements.dispatch)."""
    report = dispatch.drain(recipient_id)
    if report.more:
        # Time budget spent: queue again behind the other recipients' drains (fairness).
        drain_recipient.delay(recipient_id)
    return {
        "recipient": recipient_id,
        "batches": report.batches,
        "delivered": report.delivered,
        "retry": report.retry,
        "failed": report.failed,
        "more": report.more,
    }


@shared_task(name="entitlements.tasks.sweep_outbound")
def sweep_outbound() -> int:
    """Start a drain for every recipient with due messages (retries, lost wake-ups)."""
    recipients = dispatch.due_recipients()
    for recipient_id in recipients:
        drain_recipient.delay(recipient_id)
    return len(recipients)


@shared_task(name="entitlements.tasks.expire_entitlements")
def expire_entitlements() -> int:
    """Move entitlements past their order's expirationDate to expired."""
    return expire_due().entitlements
