"""A user device file's content for the hardware tests (tests/test_hardware.py, test_hw_cli.py): one valid board with
one power mode, its peak derived from clock x SMs x rate. Treat it as read-only; tests change copies."""
from __future__ import annotations

BOARD = {
    "id": "my-board", "name": "My Board", "vendor": "Me", "type": "soc", "aliases": ["myboard"],
    "ops_per_clock": {"fp16": 2048},
    "power_modes": [{"name": "10W", "power_w": 10, "gpu_clock_mhz": 500, "active_sms": 2,
                     "memory_bandwidth_gbps": 25.6, "peak_tflops": {"fp16": 2.048},
                     "derived": {"fp16": "2 SM x 2048 FLOP/clk x 500 MHz"}, "source": "my measurements"}],
    "default_mode": "10W",
}
