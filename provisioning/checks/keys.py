"""Key files (present, owner-only) and the kiosk's TLS certificate (valid, names the host)."""

from __future__ import annotations

import stat

from provisioning.checks.result import CheckResult, VerifyContext, fail, first_line, passed


def check_keys(ctx: VerifyContext) -> list[CheckResult]:
    s, lay = ctx.device.settings, ctx.device.layout
    secrets_ = {"store key": s.store_key_file, "reference secret": s.hmac_secret_file,
                "device Curve secret": s.telemetry.device_secret_key_file or
                lay.device_secret_key, "kiosk TLS key": s.kiosk.tls_key_file or lay.tls_key}
    out: list[CheckResult] = []
    for label, path in secrets_.items():
        name = f"key: {label}"
        if not path.is_file():
            out += fail(name, f"{path} is missing",
                         "restore it from backup, or re-provision with `init --force`")
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            out += fail(name, f"{path} has mode {mode:04o}", f"chmod 600 {path}")
        else:
            out += passed(name, f"present, mode {mode:04o}")
    central = s.telemetry.central_public_key_file or lay.central_public_key
    if not s.telemetry.enabled:
        out.append(CheckResult("key: central public key", "skip", "telemetry disabled"))
    elif central.is_file():
        out += passed("key: central public key", "present")
    else:
        out += fail("key: central public key", f"{central} is missing",
                     "run `python -m provisioning import-central-key FILE`")
    from provisioning.gate_keys import check_gate_keys  # the gate link's three keypairs

    return out + check_gate_keys(ctx)


def check_tls(ctx: VerifyContext) -> list[CheckResult]:
    from provisioning.tls import certificate_days_left, certificate_names, covers_host

    name = "kiosk TLS certificate"
    s = ctx.device.settings
    if not s.kiosk.enabled:
        return [CheckResult(name, "skip", "kiosk disabled")]
    cert = s.kiosk.tls_cert_file or ctx.device.layout.tls_cert
    renew = "python -m provisioning renew-kiosk-cert"
    if not cert.is_file():
        return fail(name, f"{cert} is missing", f"run `{renew} --dir DIR` (or re-provision)")
    try:
        days = certificate_days_left(cert, ctx.clock.now())
        names = certificate_names(cert)
    except ValueError as exc:
        return fail(name, f"unreadable ({first_line(exc)})", f"run `{renew} --dir DIR`")
    shown = f"names {', '.join(names) or 'none'}"
    if days < 0:
        return fail(name, f"expired {-days:.0f} days ago; {shown}", f"run `{renew} --dir DIR`")
    if days < 30:
        return fail(name, f"expires in {days:.0f} days; {shown}",
                     f"run `{renew} --dir DIR` before it expires")
    host = s.kiosk.host.strip("[]")
    if host not in ("0.0.0.0", "::", "") and not covers_host(names, host):
        return fail(name, f"does not name kiosk.host {host}, so screens reaching the box "
                     f"there get a name mismatch; {shown}",
                     f"run `{renew} --dir DIR --kiosk-name {host}`")
    return passed(name, f"valid for {days:.0f} more days; {shown}")
