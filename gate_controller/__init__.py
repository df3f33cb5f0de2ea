"""Gate controller: owns the e-gate hardware and its safety rules, in its own process.

The daemon talks to it through `gate_controller.client.GateClient` using the gate/1 messages
of `wire.gate`; `gate_controller.safety` is the pure safety state machine;
drivers (`simulated`, `serial_relay`) sit behind the `GateIO` protocol in `gateio`.
"""
