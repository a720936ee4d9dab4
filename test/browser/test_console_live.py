"""The console against the whole local stack (`kubellm.devcluster.demo`, as hack/local-up.sh runs it): the
API server, two member GPU clusters (real control planes, simulated GPU nodes) and the controller manager.
In the browser: both clusters with their GPUs, an LLMService created from the form going to Serving on
its own, scaled, its placement on the members, deleted. Needs the Kubernetes binaries (hack/install-deps.sh):
skips without them, fails under CI=true."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import CONSOLE_DIST, check_accessibility, missing, screenshot, secret

from kubellm.devcluster.demo import Demo

NS = "models"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    if not (CONSOLE_DIST / "index.html").is_file():
        missing("the console is not built (npm ci && npm run build in console/)")
    demo = Demo(tmp_path_factory.mktemp("console-stack"), apiserver_args=[
        "--secure-port", "0", "--etcd-compaction-interval", "0", "--console-dir", str(CONSOLE_DIST)],
        probe_interval="1s")
    try:
        demo.start()
        if len(demo.clusters) != 2:
            missing("no member clusters: the Kubernetes binaries are missing (hack/install-deps.sh)")
        for member in demo.clusters:
            secret(member.token)
        demo.kubectl("create", "namespace", NS)
        yield demo
    finally:
        demo.stop()


def admin_password(state: Path) -> str:
    lines = (state / "admin-credentials").read_text().splitlines()
    return secret(dict(line.split(": ", 1) for line in lines)["password"])


PHASES_SEEN = """(name) => {
    window.__phases = [];
    new MutationObserver(() => {
        const cell = document.querySelector(`tr[data-name='${name}'] [data-testid=phase]`);
        const phase = cell ? cell.textContent : "";
        if (phase && window.__phases[window.__phases.length - 1] !== phase) window.__phases.push(phase);
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_clusters_then_an_llmservice_from_the_form_to_serving(stack: Demo, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(f"{stack.url}/console/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(admin_password(stack.state))
    page.get_by_role("button", name="Log in").click()

    # Overview: both members Ready with their GPUs, all free
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    for cluster, model, total in (("gpu-a", "NVIDIA-A100-SXM4-80GB", "4"), ("gpu-b", "NVIDIA-L4", "8")):
        item = page.locator(f"li[data-cluster='{cluster}']")
        expect(item).to_contain_text("Ready")
        meter = item.get_by_role("meter", name=f"{cluster}: {model} GPUs free")
        expect(meter).to_have_attribute("max", total)
        expect(meter).to_have_attribute("value", total)
    check_accessibility(page)
    screenshot(page, "overview")
    page.get_by_role("link", name="Clusters", exact=True).first.click()
    expect(page.locator("tr[data-name='gpu-b']")).to_contain_text("NVIDIA-L4: 8/8 free")
    expect(page.locator("tr[data-name='gpu-a']")).to_contain_text("Ready=True")
    screenshot(page, "clusters")

    # create from the form in the models namespace: a field error from the server first
    page.get_by_role("link", name="LLMServices").click()
    page.get_by_label("Namespace").select_option(NS)
    page.get_by_role("link", name="New LLMService").click()
    expect(page.get_by_role("heading", name=f"New LLMService in {NS}")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("qwen")
    page.get_by_label("Model", exact=True).fill("Qwen/Qwen2.5-3B-Instruct")
    page.get_by_label("GPU memory utilization").fill("1.5")
    expect(page.locator("[data-field=gpuMemoryUtilization]")).to_be_visible()
    screenshot(page, "create-llmservice")
    page.get_by_label("GPU memory utilization").fill("0.9")
    expect(page.locator("[data-field=gpuMemoryUtilization]")).to_have_count(0)
    page.evaluate(PHASES_SEEN, "qwen")
    page.get_by_role("button", name="Create").click()

    # the controllers place it on a member, the simulated GPUs load it: Serving, without a reload
    row = page.locator("tr[data-name='qwen']")
    expect(row.get_by_test_id("phase")).to_have_text("Serving", timeout=90_000)
    seen = page.evaluate("window.__phases")
    assert "Loading" in seen, seen  # the model loads for two seconds on the simulated GPUs
    order = ["Pending", "Loading", "Serving"]
    assert [p for p in seen if p in order] == sorted(set(seen) & set(order), key=order.index), seen
    expect(row).to_contain_text(f"http://qwen.{NS}.svc.cluster.local:8000/v1")
    screenshot(page, "llmservices")

    # scale to two: both replicas ready, placed on the members, shown on the detail page
    row.get_by_role("button", name="Scale qwen").click()
    page.get_by_role("dialog").get_by_label("Replicas").fill("2")
    page.get_by_role("dialog").get_by_role("button", name="Scale qwen").click()
    expect(row.get_by_role("cell").nth(2)).to_have_text("2")
    expect(row.get_by_role("cell").nth(3)).to_have_text("2", timeout=90_000)
    row.get_by_role("link", name="qwen").click()
    expect(page.get_by_role("heading", name=f"LLMService {NS}/qwen")).to_be_visible()
    placed = page.locator("tr[data-cluster]")
    expect(placed.first).to_be_visible()
    status = json.loads(stack.kubectl("get", "llmservices", "qwen", "-n", NS, "-o", "json"))["status"]
    for entry in status["clusters"]:
        expect(page.locator(f"tr[data-cluster='{entry['name']}']")).to_contain_text(str(entry["replicas"]))
    expect(page.locator("tr[data-event]").first).to_be_visible()  # the controller's Events
    check_accessibility(page)
    screenshot(page, "llmservice-detail")

    # delete from the list: the row goes, and the GPUs come back on the Overview
    page.get_by_role("link", name=re.compile("LLMServices in")).click()
    page.locator("tr[data-name='qwen']").get_by_role("button", name="Delete qwen").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete qwen").click()
    expect(page.locator("tr[data-name='qwen']")).to_have_count(0, timeout=90_000)
    page.get_by_role("link", name="Overview").click()
    expect(page.locator("li[data-cluster='gpu-b']").get_by_role("meter")).to_have_attribute(
        "value", "8", timeout=60_000)
    expect(page.locator("li[data-cluster='gpu-a']").get_by_role("meter")).to_have_attribute(
        "value", "4", timeout=60_000)
