"""A confirmation-shaped row: what the hub stores before it answers 202."""

from django.db import models


class FloorConfirmation(models.Model):
    sender_id = models.BigIntegerField()
    kind = models.CharField(max_length=20)
    receive_id = models.CharField(max_length=200)
    reference_id = models.CharField(max_length=200)
    entitlement_id = models.CharField(max_length=200)
    product_id = models.CharField(max_length=200)
    processed_timestamp = models.DateTimeField()
    body = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The hub's confirmations are unique per sender, kind and receive id; so are these.
        constraints = [
            models.UniqueConstraint(
                fields=["sender_id", "kind", "receive_id"], name="floor_unique_receive"
            )
        ]

    def __str__(self) -> str:
        return self.receive_id
