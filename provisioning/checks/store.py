"""The consent store: opens with its key, passes its integrity check (read-only while in use)."""

from __future__ import annotations

from foundation.errors import ConsentGateError
from provisioning.checks.result import CheckResult, VerifyContext, fail, first_line, passed


def check_store(ctx: VerifyContext) -> list[CheckResult]:
    from edge.consent.errors import StoreBusyError
    from edge.consent.store import ConsentStore

    s = ctx.device.settings
    try:
        store = ConsentStore.open(s.store_path, s.store_key_file, s.hmac_secret_file, ctx.clock)
    except StoreBusyError:  # the daemon holds the store: check it read-only beside the daemon
        return _check_store_in_use(ctx)
    except ConsentGateError as exc:
        return fail("consent store", first_line(exc),
                     "restore the store and its key from backup, or re-provision")
    try:
        from provisioning.store_check import inspect_store

        audit_rows = store.audit_log.verify()
        found = inspect_store(s.store_path, s.store_key_file)
        if found.problems:
            return fail("consent store", f"integrity check: {found.problems[0]}",
                         "restore the store from backup")
    except ConsentGateError as exc:
        return fail("consent store", first_line(exc), "restore the store from backup")
    finally:
        store.close()
    return passed("consent store", f"opens with its key; integrity ok; audit chain of "
                                  f"{audit_rows} rows verified")


def _check_store_in_use(ctx: VerifyContext) -> list[CheckResult]:
    """The running daemon holds the store's lock: prove the key opens it, read-only."""
    from edge.consent import opening
    from edge.consent.keys import read_key_file

    s = ctx.device.settings
    try:
        opening.probe(s.store_path, read_key_file(s.store_key_file), full_check=True)
    except ConsentGateError as exc:
        return fail("consent store", first_line(exc),
                     "restore the store and its key from backup, or re-provision")
    return passed("consent store", "in use by the running daemon; opens with its key and passes "
                                  "a read-only integrity check (stop the daemon to also verify "
                                  "the audit chain)")
