"""Asset checks, one module per asset group. Blocking checks stop a run before bad data spreads."""
