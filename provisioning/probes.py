"""Network probes for the self-test: is the gate controller answering, is central acknowledging.

`probe_gate` asks the controller for its status (a status request is not a heartbeat, so it
never opens anything). `probe_central` opens a CurveZMQ DEALER with this device's keys to the
configured endpoint, sends an `uplink/1` heartbeat and waits for central's heartbeat reply:
that proves the route, the Curve handshake (central admits this device's key) and a live
collector. Neither probe sends any count or identity beyond the Curve handshake.
"""

from __future__ import annotations

import time

import zmq

from foundation.errors import ConsentGateError
from foundation.settings import Settings
from provisioning.device import Device


class ProbeError(ConsentGateError):
    """A network peer did not answer as expected."""


def probe_gate(settings: Settings, timeout_s: float) -> str:
    """'lane A closed, ...' from the gate controller, or GateUnavailableError/ProbeError."""
    from gate_controller.client import GateClient
    from wire.gate import ProtocolError

    g = settings.gate
    # the operator's key: the controller admits it for status only (it can open nothing)
    client = GateClient.from_settings(g, "operator", timeout_ms=int(timeout_s * 1000),
                                      subscribe=False)
    try:
        start = time.monotonic()
        lanes = client.status()
        took_ms = (time.monotonic() - start) * 1000
    except ProtocolError as exc:
        raise ProbeError(str(exc)) from None
    finally:
        client.close()
    missing = [lane for lane in g.lanes if lane not in lanes]
    if missing:
        raise ProbeError(f"the controller does not own lane(s) {', '.join(missing)}: check "
                         "gate.lanes on both sides")
    states = ", ".join(f"lane {k} {v}" for k, v in sorted(lanes.items()))
    return f"answered in {took_ms:.0f} ms: {states}"


def probe_central(device: Device, timeout_s: float) -> str:
    """Heartbeat round trip to central over CurveZMQ; ProbeError when it does not answer."""
    from foundation.curve_keys import load_keypair, load_public_key
    from wire import telemetry as schema

    s, lay = device.settings, device.layout
    t = s.telemetry
    public, secret = load_keypair(t.device_secret_key_file or lay.device_secret_key)
    server = load_public_key(t.central_public_key_file or lay.central_public_key)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    try:
        sock.curve_serverkey = server
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, schema.SOCKET_MAXMSGSIZE)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.connect(t.endpoints[0])  # the preferred collector
        start = time.monotonic()
        deadline = start + timeout_s
        if not sock.poll(int(timeout_s * 1000), zmq.POLLOUT):
            raise ProbeError(f"no Curve connection within {timeout_s:g} s (unreachable, or "
                             "central does not admit this device's public key)")
        sock.send(schema.HEARTBEAT)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000), zmq.POLLIN):
                raise ProbeError(f"connected but no reply within {timeout_s:g} s")
            frames = sock.recv_multipart()
            try:
                msg = schema.decode_header(frames[0])
            except ConsentGateError:
                continue
            if msg["type"] == "heartbeat":
                took_ms = (time.monotonic() - start) * 1000
                return f"heartbeat acknowledged in {took_ms:.0f} ms over CurveZMQ"
    finally:
        sock.close(linger=0)
        ctx.term()
