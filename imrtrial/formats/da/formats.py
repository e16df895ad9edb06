"""Danish pages show dates as Danes write them (30.11.2026), Django's own Danish short format.
The pages write dates with SHORT_DATE_FORMAT / SHORT_DATETIME_FORMAT; data (exports, the audit
trail's times, date inputs) stay ISO."""

from django.conf.locale.da.formats import *  # noqa: F403
