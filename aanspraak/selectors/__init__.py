"""Reads of the shared registry data (parties, schools) that more than one app needs."""
