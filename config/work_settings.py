"""The workers' settings, read from the environment like the rest of config/settings.py
(which imports them all; docs/operations.md, "Environment"): outbound delivery and expiry,
applying confirmations, the chain clients, and the periodic tasks of Celery beat.
"""

import environ as _environ

_env = _environ.Env()

# --- Outbound delivery and expiry (entitlements/outbox, docs/delivery.md) -----------------
# Seconds one outbound HTTP call may take (connect capped at 5 s).
HUB_OUTBOUND_TIMEOUT = _env.float("HUB_OUTBOUND_TIMEOUT", default=10.0)
# Concurrent sends within one recipient's batch, and the batch size of one claim.
HUB_OUTBOUND_CONCURRENCY = _env.int("HUB_OUTBOUND_CONCURRENCY", default=16)
HUB_OUTBOUND_BATCH_SIZE = _env.int("HUB_OUTBOUND_BATCH_SIZE", default=100)
# Time budget of one drain task before it queues itself again behind other recipients.
HUB_OUTBOUND_DRAIN_SECONDS = _env.float("HUB_OUTBOUND_DRAIN_SECONDS", default=30.0)
# How often beat sweeps for due messages (retries and lost wake-ups).
HUB_OUTBOUND_SWEEP_SECONDS = _env.float("HUB_OUTBOUND_SWEEP_SECONDS", default=10.0)
# Retries: exponential backoff with full jitter from the base, capped per wait, until the
# horizon after the message was created; then the message fails for good.
HUB_RETRY_BASE_SECONDS = _env.float("HUB_RETRY_BASE_SECONDS", default=5.0)
HUB_RETRY_MAX_DELAY_SECONDS = _env.float("HUB_RETRY_MAX_DELAY_SECONDS", default=3600.0)
HUB_RETRY_HORIZON_SECONDS = _env.float("HUB_RETRY_HORIZON_SECONDS", default=48 * 3600.0)
# Expiry: entitlements moved to expired per batch, and how often beat runs it.
HUB_EXPIRY_BATCH_SIZE = _env.int("HUB_EXPIRY_BATCH_SIZE", default=5000)
HUB_EXPIRY_SECONDS = _env.float("HUB_EXPIRY_SECONDS", default=3600.0)

# --- Confirmations: applying them, waking the workers (confirmations/, docs/confirmations.md)
# Confirmations a worker claims and applies in one transaction.
HUB_APPLY_BATCH_SIZE = _env.int("HUB_APPLY_BATCH_SIZE", default=500)
# Test only: seconds a worker waits inside a claimed batch (to kill it mid-batch).
HUB_APPLY_BATCH_DELAY = _env.float("HUB_APPLY_BATCH_DELAY", default=0.0)
# After a batch that was not full a worker waits this long before its next claim, so that a
# steady stream is applied in fewer, larger batches (docs/performance.md, P5).
HUB_APPLY_GATHER_SECONDS = _env.float("HUB_APPLY_GATHER_SECONDS", default=0.1)
# A wake-up of the workers is sent at most once per this many milliseconds while one is queued
# or working (a Redis key, held by the working task, cleared before its last claim); also how
# long a lost wake-up or a killed worker keeps further wake-ups back.
HUB_WAKE_DEBOUNCE_MS = _env.int("HUB_WAKE_DEBOUNCE_MS", default=5000)
# The sweep runs every INTERVAL seconds and wakes the workers when confirmations have been
# pending for longer than AGE seconds (e.g. accepted while Redis was down).
HUB_CONFIRMATION_SWEEP_INTERVAL = _env.float("HUB_CONFIRMATION_SWEEP_INTERVAL", default=30.0)
HUB_CONFIRMATION_SWEEP_AGE = _env.float("HUB_CONFIRMATION_SWEEP_AGE", default=10.0)

# --- Chain clients: enrollment lookups and usage reconciliation (docs/chain-clients.md) ----
# Enrollment lookups one resolver claims at a time (sent concurrently, HUB_OUTBOUND_CONCURRENCY).
HUB_ENROLLMENT_BATCH_SIZE = _env.int("HUB_ENROLLMENT_BATCH_SIZE", default=50)
# How often beat looks for due enrollment lookups (retries and lost wake-ups).
HUB_ENROLLMENT_SWEEP_SECONDS = _env.float("HUB_ENROLLMENT_SWEEP_SECONDS", default=10.0)
# How often every contract's usage is reconciled with the licence registries.
HUB_USAGE_RECONCILE_SECONDS = _env.float("HUB_USAGE_RECONCILE_SECONDS", default=86400.0)

# --- Periodic tasks (Celery beat): the sweeps that close every gap a crash can open --------
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "aanspraak.tasks.heartbeat", "schedule": 60.0},
    "outbound-sweep": {
        "task": "entitlements.tasks.sweep_outbound",
        "schedule": HUB_OUTBOUND_SWEEP_SECONDS,
    },
    "expire-entitlements": {
        "task": "entitlements.tasks.expire_entitlements",
        "schedule": HUB_EXPIRY_SECONDS,
    },
    "confirmations-sweep": {
        "task": "confirmations.tasks.sweep_pending",
        "schedule": HUB_CONFIRMATION_SWEEP_INTERVAL,
    },
    "enrollment-sweep": {
        "task": "entitlements.tasks.sweep_enrollments",
        "schedule": HUB_ENROLLMENT_SWEEP_SECONDS,
    },
    "usage-reconcile": {
        "task": "entitlements.tasks.reconcile_usage",
        "schedule": HUB_USAGE_RECONCILE_SECONDS,
    },
}
