"""The foundation every process shares: settings models, errors, clock, logging, CLI, Curve keys.

It imports nothing from `edge`, `gate_controller`, `central` or `provisioning`.
"""
