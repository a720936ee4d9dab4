"""The web console in a real headless Chromium against a real kubellm-apiserver: log in through the form
(the server's wrong-password and lockout messages), LLMServices appearing and changing phase live as
kubectl writes them, an ended session back at the login page, logging out; axe-core on each page."""

from __future__ import annotations

import json
import re
from typing import Any

from browser_support import Console, admin_password, check_accessibility, create_many, screenshot, secret

LLMS = "/apis/model.kubellm.io/v1alpha1/namespaces/default/llmservices"
INVALID = "invalid username or password"


def log_in(page: Any, console: Console, username: str, password: str, route: str = "llmservices") -> None:
    """Open the console at `route` and log in through the form."""
    page.goto(console.url + route)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def llmservice(name: str, model: str = "Qwen/Qwen2.5-3B-Instruct") -> str:
    return json.dumps({"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
                       "metadata": {"name": name, "namespace": "default"},
                       "spec": {"model": model, "quantization": "awq", "replicas": 2}})


def set_phase(console: Console, name: str, phase: str) -> None:
    console.server.kubectl("patch", "llmservices", name, "-n", "default", "--subresource=status", "--type=merge",
                           "-p", json.dumps({"status": {"phase": phase, "replicas": 2, "readyReplicas": 1,
                                                        "endpoint": f"http://{name}.default.svc:8000/v1"}}))


def csp_violations(page: Any) -> list[str]:
    return [e for e in page.console_errors if "Content Security Policy" in e]


def test_wrong_password_shows_the_servers_message_then_lockout(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    console.create_user("console-locked", "Correct-horse-9-battery")
    log_in(page, console, "console-locked", "not-the-password")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(INVALID)
    check_accessibility(page)
    screenshot(page, "login")
    for _ in range(5):  # the server locks the user after five failures in a row
        if "too many failed logins" in (alert.text_content() or ""):
            break
        page.get_by_label("Password").fill("still-not-the-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("button", name="Log in")).to_be_enabled()
    expect(alert).to_contain_text("too many failed logins; try again later")
    assert page.evaluate("sessionStorage.length") == 0
    assert not csp_violations(page)


def test_llmservices_live_and_logout(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server))
    expect(page).to_have_url(re.compile(r"/console/llmservices"))
    expect(page.get_by_role("heading", name="LLMServices")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="live")).to_be_visible()
    check_accessibility(page)

    console.server.kubectl("apply", "-f", "-", input=llmservice("browser-live"))
    row = page.locator("tr[data-name='browser-live']")
    expect(row).to_be_visible()  # arrived by watch: no reload
    expect(row.get_by_role("cell").nth(0)).to_have_text("Qwen/Qwen2.5-3B-Instruct")
    expect(row.get_by_role("cell").nth(1)).to_have_text("awq")
    expect(row.get_by_role("cell").nth(2)).to_have_text("2")

    set_phase(console, "browser-live", "Loading")
    expect(row.get_by_test_id("phase")).to_have_text("Loading")
    set_phase(console, "browser-live", "Serving")
    expect(row.get_by_test_id("phase")).to_have_text("Serving")
    expect(row).to_contain_text("http://browser-live.default.svc:8000/v1")

    # admin may scale (the scale subresource): the new count arrives by watch; a bad one is the server's message
    row.get_by_role("button", name="Scale browser-live").click()
    dialog = page.get_by_role("dialog", name="Scale LLMService browser-live")
    dialog.get_by_label("Replicas").fill("-1")
    dialog.get_by_role("button", name="Scale browser-live").click()
    expect(dialog.get_by_role("alert")).to_contain_text("spec.replicas")
    check_accessibility(page)
    dialog.get_by_label("Replicas").fill("3")
    dialog.get_by_role("button", name="Scale browser-live").click()
    expect(dialog).to_have_count(0)
    expect(row.get_by_role("cell").nth(2)).to_have_text("3")

    # admin may delete (SelfSubjectAccessReview): a confirmation first, then the watch removes the row
    row.get_by_role("button", name="Delete browser-live").click()
    dialog = page.get_by_role("dialog", name="Delete LLMService browser-live?")
    expect(dialog).to_be_visible()
    check_accessibility(page)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(row).to_be_visible()
    row.get_by_role("button", name="Delete browser-live").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete browser-live").click()
    expect(row).to_have_count(0)
    assert console.server.kubectl("get", "llmservices", "-n", "default", "-o", "name").stdout.strip() == ""

    console.server.kubectl("apply", "-f", "-", input=llmservice("browser-gone"))
    expect(page.locator("tr[data-name='browser-gone']")).to_be_visible()
    console.server.kubectl("delete", "llmservices", "browser-gone", "-n", "default")
    expect(page.locator("tr[data-name='browser-gone']")).to_have_count(0)

    page.get_by_role("link", name="Clusters").click()
    expect(page.get_by_role("heading", name="Clusters")).to_be_visible()
    expect(page.get_by_text("No member clusters are registered.")).to_be_visible()
    check_accessibility(page)

    assert page.context.cookies() == []  # the token travels as a bearer header only
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You have logged out.")
    expect(page.get_by_label("Password")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert not csp_violations(page)


def test_the_session_ends_when_the_token_expires(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server))
    expect(page.get_by_role("status").filter(has_text="live")).to_be_visible()
    expires = page.evaluate("sessionStorage.getItem('kubellm.expires')")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", expires)  # as /login answered it
    # as if the hour had passed: the page, loaded again, finds the expiry due and goes back to the login form
    page.evaluate("sessionStorage.setItem('kubellm.expires', new Date(Date.now() + 500).toISOString())")
    page.reload()
    expect(page.get_by_role("status")).to_have_text("Your session expired: log in again.")
    expect(page.get_by_label("Password")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_revoked_token_returns_to_login_with_a_message(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server))
    expect(page.get_by_role("status").filter(has_text="live")).to_be_visible()
    token = page.evaluate("sessionStorage.getItem('kubellm.token')")
    assert token
    code, _, _ = console.post_logout(token)
    assert code == 200
    page.get_by_role("link", name="Clusters").click()  # the next API request carries the revoked token
    expect(page.get_by_role("status")).to_contain_text("Your session has ended")
    expect(page.get_by_label("Password")).to_be_visible()


def test_a_view_only_user_sees_no_scale_or_delete_controls(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    console.create_user("console-viewer", "Viewer-pass-42-long")
    console.server.kubectl("apply", "-f", "-", input=(
        "apiVersion: iam.kubellm.io/v1alpha1\nkind: RoleBinding\n"
        "metadata: {name: console-viewer, namespace: default}\n"
        "roleRef: {apiGroup: iam.kubellm.io, kind: ClusterRole, name: view}\n"
        "subjects: [{apiGroup: iam.kubellm.io, kind: User, name: console-viewer}]\n"))
    console.server.kubectl("apply", "-f", "-", input=llmservice("browser-viewed"))
    log_in(page, console, "console-viewer", "Viewer-pass-42-long")
    row = page.locator("tr[data-name='browser-viewed']")
    expect(row).to_be_visible()  # view may list and watch
    expect(page.get_by_role("status").filter(has_text="live")).to_be_visible()
    expect(page.locator("section[data-permissions='checked']")).to_be_visible()  # the review was answered
    expect(page.get_by_role("button", name=re.compile("^(Delete|Scale)"))).to_have_count(0)
    expect(page.get_by_role("link", name="New LLMService")).to_have_count(0)

    # a write that still happens (the form reached by its address) shows the server's 403 message
    page.goto(f"{console.url}llmservices/new?namespace=default")
    page.get_by_label("Name", exact=True).fill("forced")
    expect(page.get_by_role("alert")).to_contain_text(
        'User "console-viewer" cannot create resource "llmservices"')
    # the Overview lists every namespace: the server's refusal is shown where the data would be
    page.get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="cannot list resource \"llmservices\"")).to_be_visible()
    check_accessibility(page)
    # no create on RAGServices, no create or delete on the Access page
    page.get_by_role("link", name="RAGServices").click()
    expect(page.get_by_role("heading", name="RAGServices")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="live")).to_be_visible()
    expect(page.get_by_role("link", name="New RAGService")).to_have_count(0)
    page.get_by_role("link", name="Access").click()
    expect(page.get_by_role("heading", name="Roles and bindings")).to_be_visible()
    expect(page.locator("section[data-permissions='checked']")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^(New|Delete)"))).to_have_count(0)
    console.server.kubectl("delete", "llmservices", "browser-viewed", "-n", "default")
    expect(row).to_have_count(0)


def test_a_thousand_llmservices_render_and_stay_live(console: Console, page: Any,
                                                     record_property: Any) -> None:
    from playwright.sync_api import expect

    ns = "console-scale"
    console.server.kubectl("create", "namespace", ns)
    create_many(console, ns, [
        {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
         "metadata": {"name": f"llm-{i:04d}", "namespace": ns},
         "spec": {"model": "Qwen/Qwen2.5-3B-Instruct", "replicas": 1}} for i in range(1000)])
    log_in(page, console, "admin", admin_password(console.server))
    expect(page.get_by_role("status").filter(has_text="live")).to_be_visible()
    page.evaluate("""() => {
        window.__rowsShown = new Promise(resolve => new MutationObserver((_, observer) => {
            if (document.querySelectorAll("tbody tr").length === 1000) {
                observer.disconnect(); resolve(performance.now());
            }
        }).observe(document.body, {subtree: true, childList: true}));
    }""")
    start = page.evaluate("performance.now()")
    page.get_by_label("Namespace").select_option(ns)  # navigation to the namespace's list
    expect(page.get_by_role("status").filter(has_text="1000 LLMServices, live")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(1000)
    record_property("render_1000_ms", round(page.evaluate("window.__rowsShown") - start))

    row = page.locator("tr[data-name='llm-0500']")
    page.evaluate("""() => {
        window.__phaseSeen = new Promise(resolve => new MutationObserver((_, observer) => {
            if (document.querySelector("tr[data-name='llm-0500'] [data-testid=phase]")?.textContent === "Serving") {
                observer.disconnect(); resolve(performance.now());
            }
        }).observe(document.querySelector("tbody"), {subtree: true, childList: true, characterData: true}));
    }""")
    before = page.evaluate("performance.now()")
    console.server.kubectl("patch", "llmservices", "llm-0500", "-n", ns, "--subresource=status", "--type=merge",
                           "-p", json.dumps({"status": {"phase": "Serving", "replicas": 1, "readyReplicas": 1}}))
    expect(row.get_by_test_id("phase")).to_have_text("Serving")
    record_property("status_change_ms", round(page.evaluate("window.__phaseSeen") - before))
    # still responsive: switching pages and back re-renders the thousand rows
    page.get_by_role("link", name="Clusters").click()
    expect(page.get_by_role("heading", name="Clusters")).to_be_visible()
    page.get_by_role("link", name="LLMServices").click()
    expect(page.locator("tbody tr")).to_have_count(1000)


def cluster_status(available: int) -> str:
    return json.dumps({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "Probed", "message": "2/2 nodes ready",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "kubernetesVersion": "v1.36.2", "nodeCount": 2,
        "gpus": [{"model": "NVIDIA-L4-24GB", "memoryMiB": 24576, "nodes": 2, "count": 8, "allocatable": 8,
                  "available": available, "largestFree": min(available, 4)}]}})


def test_clusters_page_shows_conditions_version_nodes_and_gpus_live(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server))
    page.get_by_role("link", name="Clusters").click()
    expect(page.get_by_role("heading", name="Clusters")).to_be_visible()
    token = secret("console-member-token-0123456789")
    # registered through the form: the server's field error first, the credentials written once
    page.get_by_role("link", name="Register a cluster").click()
    page.get_by_label("Name").fill("gpu-browser")
    page.get_by_label("Bearer token (write-only: never shown again)").fill(token)
    page.get_by_label("Region").fill("eu-west")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("[data-field=apiEndpoint]")).to_contain_text("Required value")
    check_accessibility(page)
    page.get_by_label("API server URL").fill("https://10.0.0.9:6443")
    page.get_by_role("button", name="Register").click()
    row = page.locator("tr[data-name='gpu-browser']")
    expect(row).to_be_visible()
    stored = json.loads(console.server.kubectl("get", "clusters", "gpu-browser", "-o", "json").stdout)
    assert stored["spec"]["region"] == "eu-west"
    assert token not in json.dumps(stored)  # write-only
    console.server.kubectl("patch", "clusters", "gpu-browser", "--subresource=status", "--type=merge",
                           "-p", cluster_status(5))
    expect(row).to_contain_text("Ready=True")
    expect(row).to_contain_text("v1.36.2")
    expect(row.get_by_role("cell").nth(2)).to_have_text("2")
    expect(row).to_contain_text("NVIDIA-L4-24GB: 5/8 free")
    meter = row.get_by_role("meter", name="NVIDIA-L4-24GB GPUs free")
    expect(meter).to_have_attribute("value", "5")
    expect(meter).to_have_attribute("max", "8")
    expect(row).not_to_contain_text(token)
    check_accessibility(page)
    console.server.kubectl("patch", "clusters", "gpu-browser", "--subresource=status", "--type=merge",
                           "-p", cluster_status(2))
    expect(row).to_contain_text("NVIDIA-L4-24GB: 2/8 free")
    row.get_by_role("button", name="Cordon gpu-browser").click()
    expect(row.get_by_role("rowheader")).to_have_text("gpu-browser (cordoned)")
    assert json.loads(console.server.kubectl("get", "clusters", "gpu-browser", "-o", "json").stdout
                      )["spec"]["unschedulable"] is True
    row.get_by_role("button", name="Uncordon gpu-browser").click()
    expect(row.get_by_role("rowheader")).to_have_text("gpu-browser")
    console.server.kubectl("delete", "clusters", "gpu-browser")
    expect(row).to_have_count(0)


def test_create_from_the_form_with_the_servers_field_errors_as_you_type(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server))
    page.get_by_role("link", name="New LLMService").click()
    expect(page.get_by_role("heading", name="New LLMService in default")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("browser-form")
    page.get_by_label("Model", exact=True).fill("Qwen/Qwen2.5-7B-Instruct")
    page.get_by_label("Quantization").select_option("gptq")
    page.get_by_label("Max model length").fill("256")
    error = page.locator("[data-field=maxModelLen]")
    expect(error).to_contain_text("must be greater than or equal to 512")  # a dry-run, before any submit
    expect(page.get_by_label("Max model length")).to_have_attribute("aria-invalid", "true")
    check_accessibility(page)
    page.get_by_label("Max model length").fill("4096")
    expect(error).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="valid")).to_be_visible()
    assert console.server.kubectl("get", "llmservices", "-n", "default", "-o", "name").stdout.strip() == ""
    page.get_by_label("Autoscale").check()
    page.get_by_label("Max replicas").fill("3")
    page.get_by_role("button", name="Create").click()
    row = page.locator("tr[data-name='browser-form']")
    expect(row).to_be_visible()
    expect(row.get_by_role("cell").nth(1)).to_have_text("gptq")
    created = json.loads(console.server.kubectl("get", "llmservices", "browser-form", "-n", "default",
                                                "-o", "json").stdout)
    assert created["spec"]["maxModelLen"] == 4096
    assert created["spec"]["autoscaling"]["maxReplicas"] == 3
    for phase in ("Pending", "Loading", "Serving"):
        set_phase(console, "browser-form", phase)
        expect(row.get_by_test_id("phase")).to_have_text(phase)

    # its detail page: status, placement per cluster, conditions and Events, live
    row.get_by_role("link", name="browser-form").click()
    expect(page).to_have_url(re.compile(r"/console/llmservices/default/browser-form$"))
    expect(page.get_by_role("heading", name="LLMService default/browser-form")).to_be_visible()
    expect(page.get_by_test_id("phase")).to_have_text("Serving")
    console.server.kubectl("patch", "llmservices", "browser-form", "-n", "default", "--subresource=status",
                           "--type=merge", "-p", json.dumps({"status": {
                               "phase": "Serving", "replicas": 2, "readyReplicas": 2,
                               "clusters": [{"name": "gpu-a", "replicas": 1, "readyReplicas": 1, "phase": "Serving"},
                                            {"name": "gpu-b", "replicas": 1, "readyReplicas": 1, "phase": "Serving"}],
                               "conditions": [{"type": "Ready", "status": "True", "reason": "Serving",
                                               "message": "2/2 replicas ready",
                                               "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))
    expect(page.locator("tr[data-cluster='gpu-b']")).to_contain_text("Serving")
    expect(page.locator("tr[data-condition='Ready']")).to_contain_text("2/2 replicas ready")
    console.server.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "browser-form.serving", "namespace": "default"},
        "involvedObject": {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService", "name": "browser-form",
                           "namespace": "default"},
        "reason": "Serving", "message": "2/2 replicas ready on gpu-a, gpu-b", "type": "Normal",
        "source": {"component": "llmservice-controller"}, "lastTimestamp": "2026-01-01T00:00:00Z"}))
    expect(page.locator("tr[data-event='Serving']")).to_contain_text("2/2 replicas ready on gpu-a, gpu-b")
    check_accessibility(page)

    # its YAML, applied server-side: the server's message for an invalid value, then the change shown live
    page.get_by_role("button", name="Edit YAML").click()
    editor = page.get_by_role("textbox", name="Edit YAML (server-side apply)")
    expect(editor).to_have_value(re.compile("maxModelLen: 4096"))
    editor.fill((editor.input_value()).replace("maxModelLen: 4096", "maxModelLen: 100"))
    page.get_by_role("button", name="Apply", exact=True).click()
    # the form created it with an update (another field manager): apply reports the conflict first
    expect(page.get_by_role("alert")).to_contain_text("Apply failed with 1 conflict")
    take_over = page.get_by_role("button", name="Apply and take over the conflicting fields")
    take_over.click()
    expect(page.get_by_role("alert")).to_contain_text("spec.maxModelLen: Invalid value: 100")
    check_accessibility(page)
    editor.fill((editor.input_value()).replace("maxModelLen: 100", "maxModelLen: 8192"))
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Apply failed with 1 conflict")
    take_over.click()
    expect(editor).to_have_count(0)
    expect(page.locator("dt:text-is('Max model length') + dd")).to_have_text("8192")
    assert json.loads(console.server.kubectl("get", "llmservices", "browser-form", "-n", "default", "-o",
                                             "json").stdout)["spec"]["maxModelLen"] == 8192
    console.server.kubectl("delete", "llmservices", "browser-form", "-n", "default")
    expect(page.get_by_text("There is no LLMService browser-form in default")).to_be_visible()


def test_overview_shows_clusters_gpus_phases_and_events_live(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server), route="")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    serving = page.locator("dl[data-synced=true] dd[data-phase='Serving']")
    expect(serving).to_be_visible()
    before = int(serving.text_content() or "")  # other tests' LLMServices may serve too
    token = secret("console-overview-token-0123456789")
    console.server.kubectl("apply", "-f", "-", input=(
        "apiVersion: cluster.kubellm.io/v1alpha1\nkind: Cluster\nmetadata: {name: gpu-overview}\n"
        f"spec: {{apiEndpoint: 'https://10.0.0.8:6443', credentials: {{token: {token}}}}}\n"))
    console.server.kubectl("patch", "clusters", "gpu-overview", "--subresource=status", "--type=merge",
                           "-p", cluster_status(6))
    cluster = page.locator("li[data-cluster='gpu-overview']")
    expect(cluster).to_contain_text("Ready")
    expect(cluster.get_by_role("meter", name="gpu-overview: NVIDIA-L4-24GB GPUs free")).to_have_attribute("value", "6")
    console.server.kubectl("apply", "-f", "-", input=llmservice("browser-overview"))
    set_phase(console, "browser-overview", "Serving")
    expect(serving).to_have_text(str(before + 1))
    console.server.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "browser-overview.scheduled", "namespace": "default"},
        "involvedObject": {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
                           "name": "browser-overview", "namespace": "default"},
        "reason": "Scheduled", "message": "replicas on gpu-overview (2)", "type": "Normal",
        "source": {"component": "llmservice-controller"}, "lastTimestamp": "2026-01-01T00:00:00Z"}))
    expect(page.locator("tr[data-event='Scheduled']")).to_contain_text("replicas on gpu-overview (2)")
    check_accessibility(page)
    console.server.kubectl("delete", "llmservices", "browser-overview", "-n", "default")
    console.server.kubectl("delete", "clusters", "gpu-overview")
    expect(serving).to_have_text(str(before))
    expect(cluster).to_have_count(0)


def test_users_create_bind_disable_reset_and_logins(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server), route="users")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    page.get_by_role("button", name="New user").click()
    dialog = page.get_by_role("dialog", name="New user")
    dialog.get_by_label("Username").fill("console-bob")
    dialog.get_by_label("Email").fill("bob@example.com")
    dialog.get_by_label("Groups (comma-separated)").fill("ml-team")
    dialog.get_by_label("Password").fill(secret("Bob-first-pass-77"))
    dialog.get_by_role("button", name="Create user").click()
    row = page.locator("tr[data-name='console-bob']")
    expect(row).to_contain_text("bob@example.com")
    expect(row).to_contain_text("ml-team")
    expect(row.get_by_test_id("state")).to_have_text("Active")
    check_accessibility(page)

    row.get_by_role("button", name="Bind role to console-bob").click()
    dialog = page.get_by_role("dialog", name="Bind a role to console-bob")
    expect(dialog.get_by_role("option", name="edit", exact=True)).to_have_count(1)  # the roles, listed
    dialog.get_by_label("Cluster role").select_option("edit")
    dialog.get_by_role("button", name="Bind").click()
    expect(dialog).to_have_count(0)
    bindings = json.loads(console.server.kubectl("get", "rolebindings.iam.kubellm.io", "-n", "default",
                                                 "-o", "json").stdout)["items"]
    assert any(b["roleRef"]["name"] == "edit" and b["subjects"][0]["name"] == "console-bob" for b in bindings)

    row.get_by_role("button", name="Disable console-bob").click()
    expect(row.get_by_test_id("state")).to_have_text("Disabled")
    row.get_by_role("button", name="Enable console-bob").click()
    expect(row.get_by_test_id("state")).to_have_text("Active")

    row.get_by_role("button", name="Reset password of console-bob").click()
    dialog = page.get_by_role("dialog", name="Reset the password of console-bob")
    dialog.get_by_label("New password").fill("short")
    dialog.get_by_role("button", name="Set password").click()
    expect(dialog.get_by_role("alert")).to_contain_text("spec.password")  # the server's password policy
    dialog.get_by_label("New password").fill(secret("Bob-second-pass-88"))
    dialog.get_by_role("button", name="Set password").click()
    expect(dialog).to_have_count(0)

    page.get_by_role("button", name="Logins of admin").click()
    expect(page.get_by_role("heading", name="Logins of admin")).to_be_visible()
    expect(page.locator("tr[data-reason=Succeeded]").first).to_contain_text("succeeded")
    check_accessibility(page)
    screenshot(page, "users")


def test_ragservices_live_and_delete(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server), route="ragservices")
    expect(page.get_by_role("heading", name="RAGServices")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="in default, live")).to_be_visible()
    console.server.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "model.kubellm.io/v1alpha1", "kind": "RAGService",
        "metadata": {"name": "browser-rag", "namespace": "default"},
        "spec": {"llmServiceRef": {"name": "qwen"}, "embedding": {"model": "paraphrase-multilingual-MiniLM-L12-v2"}}}))
    row = page.locator("tr[data-name='browser-rag']")
    expect(row).to_contain_text("paraphrase-multilingual-MiniLM-L12-v2")
    expect(row.get_by_role("cell").nth(0)).to_have_text("qwen")
    console.server.kubectl("patch", "ragservices", "browser-rag", "-n", "default", "--subresource=status",
                           "--type=merge", "-p", json.dumps({"status": {"phase": "Indexing"}}))
    expect(row.get_by_test_id("phase")).to_have_text("Indexing")
    check_accessibility(page)
    row.get_by_role("button", name="Delete browser-rag").click()
    dialog = page.get_by_role("dialog", name="Delete RAGService browser-rag?")  # the console's own, not confirm()
    expect(dialog).to_be_visible()
    check_accessibility(page)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(row).to_be_visible()
    row.get_by_role("button", name="Delete browser-rag").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete browser-rag").click()
    expect(row).to_have_count(0)


def test_ragservice_created_from_the_form_then_listed_and_its_detail(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server), route="ragservices")
    expect(page.get_by_role("heading", name="RAGServices")).to_be_visible()
    expect(page.get_by_label("Namespace")).to_have_value("default")  # its own namespace selector
    page.get_by_role("link", name="New RAGService").click()
    expect(page.get_by_role("heading", name="New RAGService in default")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("browser-rag-form")
    page.get_by_label("LLMService", exact=True).fill("qwen")
    page.get_by_label("Embedding model").fill("paraphrase-multilingual-MiniLM-L12-v2")
    page.get_by_label("Source name").fill("docs")
    page.get_by_label("Source URI").fill("https://github.com/example/docs.git")
    page.get_by_label("Chunk overlap").fill("600")
    error = page.locator("[data-field=chunkOverlap]")
    expect(error).to_contain_text("must be less than spec.chunking.chunkSize")  # a dry-run, before any submit
    expect(page.get_by_label("Chunk overlap")).to_have_attribute("aria-invalid", "true")
    check_accessibility(page)
    page.get_by_label("Chunk overlap").fill("100")
    expect(error).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="valid")).to_be_visible()
    assert "browser-rag-form" not in console.server.kubectl("get", "ragservices", "-n", "default", "-o", "name").stdout
    page.get_by_role("button", name="Create").click()
    row = page.locator("tr[data-name='browser-rag-form']")
    expect(row).to_contain_text("paraphrase-multilingual-MiniLM-L12-v2")
    expect(row.get_by_role("cell").nth(0)).to_have_text("qwen")
    created = json.loads(console.server.kubectl("get", "ragservices", "browser-rag-form", "-n", "default",
                                                "-o", "json").stdout)
    assert created["spec"]["chunking"]["chunkOverlap"] == 100
    assert created["spec"]["sources"][0]["uri"] == "https://github.com/example/docs.git"

    row.get_by_role("link", name="browser-rag-form").click()
    expect(page).to_have_url(re.compile(r"/console/ragservices/default/browser-rag-form$"))
    expect(page.get_by_role("heading", name="RAGService default/browser-rag-form")).to_be_visible()
    expect(page.locator("tr[data-source='docs']")).to_contain_text("https://github.com/example/docs.git")
    console.server.kubectl("patch", "ragservices", "browser-rag-form", "-n", "default", "--subresource=status",
                           "--type=merge", "-p", json.dumps({"status": {
                               "phase": "Indexing", "indexedDocuments": 12,
                               "conditions": [{"type": "Ready", "status": "False", "reason": "Indexing",
                                               "message": "12 documents indexed",
                                               "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))
    expect(page.get_by_test_id("phase")).to_have_text("Indexing")
    expect(page.locator("tr[data-condition='Ready']")).to_contain_text("12 documents indexed")
    console.server.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "browser-rag-form.indexing", "namespace": "default"},
        "involvedObject": {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "RAGService",
                           "name": "browser-rag-form", "namespace": "default"},
        "reason": "Indexing", "message": "indexing docs", "type": "Normal",
        "source": {"component": "ragservice-controller"}, "lastTimestamp": "2026-01-01T00:00:00Z"}))
    expect(page.locator("tr[data-event='Indexing']")).to_contain_text("indexing docs")
    check_accessibility(page)
    console.server.kubectl("delete", "ragservices", "browser-rag-form", "-n", "default")
    expect(page.get_by_text("There is no RAGService browser-rag-form in default")).to_be_visible()


def test_roles_and_bindings_appear_live(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server), route="access")
    expect(page.get_by_role("heading", name="Roles and bindings")).to_be_visible()
    expect(page.locator("[data-list=clusterroles] tr[data-name='edit']")).to_be_visible()  # the built-in roles
    check_accessibility(page)
    iam = "apiVersion: iam.kubellm.io/v1alpha1\n"
    subject = "subjects: [{apiGroup: iam.kubellm.io, kind: User, name: console-access}]\n"
    console.server.kubectl("apply", "-f", "-", input=(
        f"{iam}kind: ClusterRole\nmetadata: {{name: console-reader}}\n"
        "rules: [{apiGroups: [model.kubellm.io], resources: [ragservices], verbs: [get, list]}]\n---\n"
        f"{iam}kind: ClusterRoleBinding\nmetadata: {{name: console-reader}}\n"
        f"roleRef: {{apiGroup: iam.kubellm.io, kind: ClusterRole, name: console-reader}}\n{subject}---\n"
        f"{iam}kind: Role\nmetadata: {{name: console-scaler, namespace: default}}\n"
        "rules: [{apiGroups: [model.kubellm.io], resources: [llmservices/scale], verbs: [patch]}]\n---\n"
        f"{iam}kind: RoleBinding\nmetadata: {{name: console-scaler, namespace: default}}\n"
        f"roleRef: {{apiGroup: iam.kubellm.io, kind: Role, name: console-scaler}}\n{subject}"))
    expect(page.locator("[data-list=clusterroles] tr[data-name='console-reader']")).to_contain_text(
        "get,list ragservices")
    expect(page.locator("[data-list=clusterrolebindings] tr[data-name='console-reader']")).to_contain_text(
        "User console-access")
    expect(page.locator("[data-list=roles] tr[data-name='console-scaler']")).to_contain_text("patch llmservices/scale")
    binding = page.locator("[data-list=rolebindings] tr[data-name='console-scaler']")
    expect(binding).to_contain_text("Role console-scaler")
    check_accessibility(page)
    console.server.kubectl("delete", "rolebindings.iam.kubellm.io", "console-scaler", "-n", "default")
    expect(binding).to_have_count(0)
    console.server.kubectl("delete", "roles.iam.kubellm.io", "console-scaler", "-n", "default")
    console.server.kubectl("delete", "clusterrolebindings.iam.kubellm.io", "console-reader")
    console.server.kubectl("delete", "clusterroles.iam.kubellm.io", "console-reader")


def test_roles_and_bindings_created_from_the_forms_and_deleted_with_a_dialog(console: Console, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, console, "admin", admin_password(console.server), route="access?namespace=default")
    expect(page.get_by_role("heading", name="Roles and bindings")).to_be_visible()
    page.get_by_role("button", name="New role").click()
    dialog = page.get_by_role("dialog", name="New role")
    dialog.get_by_label("Kind").select_option("Role")
    dialog.get_by_label("Name", exact=True).fill("browser-role")
    dialog.get_by_label("API groups of rule 1").fill("model.kubellm.io")
    dialog.get_by_label("Resources of rule 1").fill("llmservices")
    dialog.get_by_label("Verbs of rule 1").fill(" , ")  # no verb at all
    error = dialog.locator("[data-field=verbs0]")
    expect(error).to_contain_text("verbs must contain at least one value")  # a dry-run, before any submit
    expect(dialog.get_by_label("Verbs of rule 1")).to_have_attribute("aria-invalid", "true")
    check_accessibility(page)
    dialog.get_by_label("Verbs of rule 1").fill("get, list")
    expect(error).to_have_count(0)
    dialog.get_by_role("button", name="Add rule").click()
    dialog.get_by_label("API groups of rule 2").fill("model.kubellm.io")
    dialog.get_by_label("Resources of rule 2").fill("llmservices/scale")
    dialog.get_by_label("Verbs of rule 2").fill("patch")
    expect(dialog.get_by_role("status").filter(has_text="valid")).to_be_visible()
    assert "browser-role" not in console.server.kubectl("get", "roles.iam.kubellm.io", "-n", "default",
                                                        "-o", "name").stdout
    dialog.get_by_role("button", name="Create role").click()
    expect(dialog).to_have_count(0)
    role = page.locator("[data-list=roles] tr[data-name='browser-role']")
    expect(role).to_contain_text("get,list llmservices; patch llmservices/scale")

    page.get_by_role("button", name="New binding").click()
    dialog = page.get_by_role("dialog", name="New binding")
    dialog.get_by_label("Kind").select_option("RoleBinding")
    dialog.get_by_label("Name", exact=True).fill("browser-binding")
    dialog.get_by_label("Role kind").select_option("Role")
    dialog.get_by_label("Role name").fill("browser-role")
    dialog.get_by_label("Users").fill("console-carol")
    dialog.get_by_label("Groups").fill("ml-team")
    expect(dialog.get_by_role("status").filter(has_text="valid")).to_be_visible()
    check_accessibility(page)
    dialog.get_by_role("button", name="Create binding").click()
    expect(dialog).to_have_count(0)
    binding = page.locator("[data-list=rolebindings] tr[data-name='browser-binding']")
    expect(binding).to_contain_text("Role browser-role")
    expect(binding).to_contain_text("User console-carol, Group ml-team")

    binding.get_by_role("button", name="Delete browser-binding").click()
    confirm = page.get_by_role("dialog", name="Delete RoleBinding browser-binding?")
    expect(confirm).to_be_visible()
    check_accessibility(page)
    confirm.get_by_role("button", name="Delete browser-binding").click()
    expect(binding).to_have_count(0)
    expect(role).to_be_visible()
    console.server.kubectl("delete", "roles.iam.kubellm.io", "browser-role", "-n", "default")
    expect(role).to_have_count(0)
