"""The drill's invariants, judged from its JSON result alone. Pure.

A broken invariant makes ``exchange drill`` exit non-zero; each is a sentence that says what
broke and by how much, in minor units:

* **conservation**: everything inside the exchange (wallets, isolated wallets, the insurance
  fund, fees, the markets' clearing and funding accounts) after the drill equals what it held
  after the setup plus what was deposited meanwhile, to the minor unit; and the whole ledger,
  ``external`` included, sums to exactly 0;
* **the fund**: never below 0, and its change equals what the liquidation steps, the funding
  remainders and the injections say they moved (nothing moved the fund unaccounted);
* **bad debt**: no loss that neither the fund nor ADL took (``Liquidation.uncovered``);
* **the system**: every service still running at the end and stopped cleanly, no event record
  that failed to decode, the drill not aborted; and the engine service's final state equal to
  the state machine's replay of the command log (``replica.py``), when it could be checked.
"""

from typing import Any


def broken_invariants(result: dict[str, Any]) -> list[str]:
    """Every invariant the result breaks (module docstring); empty when the drill held."""
    broken: list[str] = []
    conservation = result["conservation"]
    if conservation["difference"] != 0:
        broken.append(
            f"conservation: inside the exchange {conservation['inside_before']} before and "
            f"{conservation['inside_after']} after, with {conservation['deposits_during']} "
            f"deposited and {conservation['withdrawals_during']} withdrawn: "
            f"{conservation['difference']} minor units created or lost"
        )
    if conservation["ledger_total"] != 0:
        broken.append(f"conservation: the ledger sums to {conservation['ledger_total']}, not 0")
    if conservation["fund_change"] != conservation["fund_change_explained"]:
        broken.append(
            f"insurance fund: changed by {conservation['fund_change']}, its liquidation steps, "
            f"funding remainders and injections explain {conservation['fund_change_explained']}"
        )
    insurance = result["insurance"]
    if insurance["low"] < 0:
        broken.append(f"insurance fund: fell to {insurance['low']}, below 0")
    uncovered = result["bad_debt"]["uncovered"]
    if uncovered != 0:
        broken.append(f"bad debt: {uncovered} minor units uncovered by the fund and ADL")
    run = result["run"]
    for name, status in run.get("services", {}).items():
        if status not in (0, None):
            broken.append(f"service {name}: exited with status {status}")
    for error in run.get("service_errors", []):
        broken.append(f"system: {error}")
    for error in result["engine"]["record_errors"]:
        broken.append(f"event log: {error}")
    replica = run.get("replica", {})
    if replica.get("checked") and not replica.get("equal"):
        broken.append(
            f"engine state: the service's final state {replica['service_state_hash'][:12]} is "
            f"not the replay of its command log {replica['replica_state_hash'][:12]}"
        )
    if run.get("aborted"):
        broken.append(f"drill aborted: {run['aborted']}")
    return broken


def exit_status(result: dict[str, Any]) -> int:
    """0 when every invariant held, 1 when any broke."""
    return 1 if broken_invariants(result) else 0
