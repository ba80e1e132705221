"""The demo: ``patchledger demo up|down|status|totp`` (issue 16).

One machine runs the whole product: the Fabric network, the three organizations' apps
(SecOps, ITOps, Compliance), ITOps' dispatcher and a simulated ITOps fleet, each a detached
process supervised by pid file (:mod:`patchledger.network.process`); then a scripted scenario
(:mod:`patchledger.app.demo.scenario`) drives the patch lifecycle through the apps' REST API
and the dispatcher, and checks its outcome on the ledger.

- :mod:`~patchledger.app.demo.settings`: the typed settings (read from the environment by the
  CLI only) and the demo's file layout;
- :mod:`~patchledger.app.demo.credentials`: the demo users' passwords, TOTP secrets and API
  tokens (a 0600 file: a demo convenience, not how an organization keeps credentials);
- :mod:`~patchledger.app.demo.processes`: the demo's processes (apps, dispatcher, fleet);
- :mod:`~patchledger.app.demo.scenario`: the scenario's named steps, each idempotent;
- :mod:`~patchledger.app.demo.cli`: the process edge.
"""
