"""Gate I/O drivers: `simulated` (in-process) and `serial_relay` (a relay/IO board on a serial
port), plus `relay_board_sim`, a board simulator speaking the same line protocol on a pty."""
