"""Anonymised telemetry: windowed counters, disclosure control, the outbox, the CurveZMQ uplink
to central and the reference central collector.

Only fixed count fields per time window ever leave the box (schema `counts/1`).
"""
