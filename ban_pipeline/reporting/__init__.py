"""The reporting path: tables, figures, studies and the regression gate, read from saved results only."""
