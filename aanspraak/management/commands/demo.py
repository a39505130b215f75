"""``python manage.py demo``: the whole loop on the embedded default
(see aanspraak/simulation/demo.py)."""

import logging
import time

from django.core.management.base import BaseCommand, CommandError

from aanspraak.log_format import use_text_format
from aanspraak.simulation import demo


class Command(BaseCommand):
    help = "Run the hub with a worker and simulated parties, and place a demo delivery order."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--exit-when-settled",
            action="store_true",
            help="stop once the demo order is entitled and processed (for scripts and tests)",
        )
        parser.add_argument("--timeout", type=float, default=120.0)

    def handle(self, *args, **options):
        logging.getLogger("httpx").setLevel(logging.WARNING)
        use_text_format()  # the demo's logs are read by people (HUB_LOG_FORMAT=text)
        login = demo.prepare()
        hub = f"http://127.0.0.1:{options['port']}"
        demo.stop_on_termination()
        processes = demo.start_processes(options["port"])
        try:
            demo.wait_for_hub(hub)
            token = demo.seller_token(hub)
            order_id = demo.place_demo_order(hub, token)
            self.stdout.write(
                "\n".join(
                    [
                        "",
                        f"Aanspraakmanager running at {hub}/",
                        f"  admin:    {hub}/admin/  login {login.username} / {login.password}",
                        f"  API docs: {hub}/api/docs/",
                        f"  API client (seller): {demo.SELLER_CLIENT[0]} / {demo.SELLER_CLIENT[1]}",
                        f"  token:  curl -s -u {':'.join(demo.SELLER_CLIENT)} "
                        f"-d grant_type=client_credentials {hub}/oauth2/token/",
                        f"  order:  curl -s -H 'Authorization: Bearer <token>' "
                        f"{hub}/entitlements/deliveryorder/{order_id}",
                        f"  logs:   {demo.log_dir()}/ (web, worker, registry, portal, seller)",
                        f"Demo delivery order {order_id} placed ({demo.STUDENTS} students).",
                        "",
                    ]
                )
            )
            deadline = time.monotonic() + options["timeout"]
            while True:
                statuses, urls = demo.order_summary(hub, token, order_id)
                self.stdout.write(
                    f"  entitlements: {dict(sorted(statuses.items()))}  "
                    f"urlStatuses: {dict(sorted(urls.items()))}"
                )
                if demo.settled(statuses, urls):
                    self.stdout.write("Demo order settled: entitled/licensed and processed.")
                    break
                if time.monotonic() > deadline:
                    raise CommandError("the demo order did not settle in time")
                time.sleep(2)
            if not options["exit_when_settled"]:
                self.stdout.write("Serving; stop with Ctrl-C.")
                while all(p.poll() is None for p in processes):
                    time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            demo.stop_processes(processes)
