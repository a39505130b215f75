"""The hub's counterparts simulated, and the demo: not part of the hub's domain.

``party`` plays a licence registry, portal, seller or school administration on one port
(``manage.py simulate_party``); ``demo`` starts the hub with simulated parties and places an
order (``manage.py demo``, ``make demo``). Both use only what ``aanspraak`` offers every app.
"""
