"""Risk alerts to lenders (JS 9; AH 9; YX 四(四)一): the rules that decide which change
of a monitored enterprise's data is an alert (``alerts.rules``, pure) and the alerts
kept for institutions to pull (``alerts.store``). The gateway composes them with the
consent, records and audit stores (``gateway.alerts``)."""
