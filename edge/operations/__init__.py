"""Operations: /healthz, /metrics, systemd notify and the restart budget."""
