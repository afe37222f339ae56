"""`netc report --format html`: a self-contained page (no network, prototxt strings escaped), and the page
driven in headless Chromium: sorting, filtering, row <-> node highlighting, no JS errors."""
from __future__ import annotations

import html
import importlib.util
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

import netc
from netc.cli import main
from netc.html import render_html

from golden import SHARED

ROOT = Path(__file__).resolve().parents[1]
ALEXNET = ROOT / "nets" / "alexnet" / "train_val.prototxt"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
GOOGLENET = SHARED / "corpus" / "bvlc_caffe" / "models" / "bvlc_googlenet" / "deploy.prototxt"
EVIL = "<script>alert(1)</script>"

HAVE_DOT = shutil.which("dot") is not None

EVIL_NET = f"""
name: "{EVIL}"
input: "data"
input_shape {{ dim: 2 dim: 3 dim: 13 dim: 17 }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param {{ num_output: 4 kernel_size: 3 }} }}
layer {{ name: "{EVIL}" type: "ReLU" bottom: "conv" top: "conv" }}
"""

# Two layers named module/part fold into one row with --group-by-prefix, and into one module node.
MODULE_NET = """
name: "modules"
input: "data"
input_shape { dim: 2 dim: 3 dim: 13 dim: 17 }
layer { name: "stem" type: "Convolution" bottom: "data" top: "stem" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "block/conv" type: "Convolution" bottom: "stem" top: "block"
        convolution_param { num_output: 5 kernel_size: 3 } }
layer { name: "block/relu" type: "ReLU" bottom: "block" top: "block" }
layer { name: "head" type: "InnerProduct" bottom: "block" top: "head" inner_product_param { num_output: 7 } }
"""


def fake_svg(analysis, modules: dict[str, list[int]] | None = None) -> str:
    """A small hand-written SVG obeying netc/draw.py's contract: `<g id="L<index>" class="node node-layer L..">`
    per layer, `<g id="M<k>" class="node node-module L..">` per collapsed module.  It stands in for Graphviz
    where `dot` is missing, and gives the tests nets (hostile names, modules) shaped for the point they make."""
    modules = modules or {}
    folded = {i for members in modules.values() for i in members}
    nodes = [(f'id="L{info.layer.index}" class="node node-layer L{info.layer.index}"', info.layer.name)
             for info in analysis.layers if info.layer.index not in folded]
    nodes += [(f'id="M{k}" class="node node-module {" ".join(f"L{i}" for i in members)}"', name)
              for k, (name, members) in enumerate(modules.items())]
    parts = []
    for y, (attrs, label) in enumerate(nodes):
        parts.append(f'<g {attrs}><rect x="10" y="{10 + 60 * y}" width="180" height="40" fill="white" stroke="black"/>'
                     f'<text x="100" y="{35 + 60 * y}" text-anchor="middle">{html.escape(label)}</text></g>')
    height = 20 + 60 * len(nodes)
    return ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="200pt" height="{height}pt" viewBox="0 0 200 {height}">'
            + "".join(parts) + "</svg>\n")


def block_layers(rep) -> list[int]:
    return [info.layer.index for info in rep.analysis.layers if info.layer.name.startswith("block/")]


def write_net(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def report_html(tmp_path: Path, net: Path, *extra: str, name: str = "report.html") -> Path:
    """The page `netc report --format html` writes."""
    out = tmp_path / name
    rc = main(["report", str(net), *extra, "--format", "html", "-o", str(out)])
    assert rc == 0
    return out


def page_for(tmp_path: Path, net: Path, phase: str = "TEST", name: str = "report.html") -> Path:
    """Through the CLI and real Graphviz; without `dot`, render_html with the hand-written SVG."""
    if HAVE_DOT:
        return report_html(tmp_path, net, "--phase", phase, name=name)
    rep = netc.report(str(net), phase=phase)
    out = tmp_path / name
    out.write_text(render_html(rep, fake_svg(rep.analysis)))
    return out


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Elements:
    p = Elements()
    p.feed(text)
    p.close()
    return p


def assert_self_contained(text: str) -> None:
    doc = parse(text)
    for tag, attrs in doc.tags:
        for attr in ("src", "href", "xlink:href", "action", "data", "poster", "srcset"):
            value = (attrs.get(attr) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (tag, attr, value)
        assert tag != "link", attrs
        assert not (tag == "script" and "src" in attrs), attrs
        assert tag not in ("iframe", "img", "object", "embed"), tag
    assert "@import" not in text and "url(" not in text
    assert [t for t, _ in doc.tags].count("script") == 1


# -- static -------------------------------------------------------------------------------------------------------

def test_alexnet_page_is_self_contained(tmp_path):
    text = page_for(tmp_path, ALEXNET).read_text()
    assert_self_contained(text)
    doc = parse(text)
    assert "AlexNet (TEST)" in doc.text
    names = {a.get("data-layers") for t, a in doc.tags if t == "tr" and "data-layers" in a}
    assert names == {str(i) for i in range(25)}
    assert "TOTAL" in doc.text and "60,965,224" in doc.text  # total row and footer
    assert any("Training memory (SGD, float32)" in t for t in doc.text)
    assert 'id="L16"' in text  # fc6's node is in the page


def test_cli_writes_html(tmp_path):
    text = report_html(tmp_path, ALEXNET, "--phase", "TEST").read_text()
    assert report_html(tmp_path, ALEXNET, "--phase", "TEST", name="again.html").read_text() == text  # deterministic
    assert text.startswith("<!DOCTYPE html>")
    assert_self_contained(text)
    if HAVE_DOT:
        assert "<svg" in text and 'id="L1"' in text and "<?xml" not in text


@pytest.mark.parametrize("via_cli", [False, True])
def test_prototxt_strings_are_escaped(tmp_path, via_cli):
    net = write_net(tmp_path, EVIL_NET, "evil.prototxt")
    if via_cli:
        text = report_html(tmp_path, net).read_text()
    else:
        rep = netc.report(str(net))
        text = render_html(rep, fake_svg(rep.analysis))
    assert EVIL not in text
    assert html.escape(EVIL) in text
    doc = parse(text)
    assert [t for t, _ in doc.tags].count("script") == 1
    assert sum(EVIL in t for t in doc.text) >= 2  # the net's name (title, heading) and the layer's row
    assert_self_contained(text)


def test_flops_column(tmp_path):
    text = report_html(tmp_path, ALEXNET, "--phase", "TEST", "--flops").read_text()
    doc = parse(text)
    assert "FLOPs" in doc.text and "MACs" not in doc.text
    assert f"{2 * 36_220_340_800:,}" in doc.text  # the total, doubled
    assert 'data-v="10541520000"' in text  # conv1: 2 x 5,270,760,000, sorted as a number


def test_module_rows_list_their_layers(tmp_path):
    net = write_net(tmp_path, MODULE_NET, "modules.prototxt")
    rep = netc.report(str(net))
    text = render_html(rep, fake_svg(rep.analysis, {"block": block_layers(rep)}), group_by_prefix=True)
    doc = parse(text)
    rows = [a["data-layers"] for t, a in doc.tags if t == "tr" and "data-layers" in a]
    index = {info.layer.name: info.layer.index for info in rep.analysis.layers}
    assert rows == [str(index[n]) for n in ("input", "stem")] + [
        f"{index['block/conv']} {index['block/relu']}", str(index["head"])]
    assert "block/*" in doc.text


def test_without_graphviz_the_page_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` to be found
    text = report_html(tmp_path, ALEXNET, "--phase", "TEST").read_text()
    assert "<svg" not in text
    assert "apt-get install graphviz" in text
    assert_self_contained(text)


def test_svg_prolog_and_scripts_are_dropped():
    rep = netc.report(str(ROOT / "nets" / "lenet" / "deploy.prototxt"))
    svg = fake_svg(rep.analysis).replace("</svg>", '<script>alert(2)</script><g onclick="alert(3)"/></svg>')
    text = render_html(rep, '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">\n<!-- c -->\n' + svg)
    assert "<?xml" not in text and "<!DOCTYPE svg" not in text
    assert "alert(2)" not in text and "alert(3)" not in text
    assert [t for t, _ in parse(text).tags].count("script") == 1


# -- in the browser ---------------------------------------------------------------------------------------------

def _browser_missing() -> str | None:
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install selenium)"
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing (apt-get install {pkg})"
    return None


needs_browser = pytest.mark.skipif(_browser_missing() is not None, reason=_browser_missing() or "")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1440,900",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.binary_location = str(CHROMIUM)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=opts, service=Service(str(CHROMEDRIVER)))
    d.set_page_load_timeout(20)
    yield d
    d.quit()


def open_page(driver, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        "return document.documentElement.getAttribute('data-ready')") == "1")


def js_errors(driver) -> list[str]:
    try:
        log = driver.get_log("browser")
    except Exception:  # a driver without the log endpoint: the page's data-ready mark is then the check
        return []
    return [e["message"] for e in log if e.get("level") == "SEVERE"]


def visible_rows(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#layers tbody tr'))"
        ".filter(r => !r.hidden && r.offsetParent !== null).map(r => r.cells[1].textContent)")


def click_header(driver, label: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//table[@id='layers']/thead//button[normalize-space()='{label}']").click()


def row_named(driver, name: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//table[@id='layers']/tbody/tr[th[normalize-space()='{name}']]")


def click(driver, element) -> None:
    """Click as a reader would: scroll the element to the middle of its pane first, clear of the sticky header
    (chromedriver clicks the centre of whatever part is in view, which a sticky header may cover)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})", element)
    element.click()


def has_class(driver, element, cls: str) -> bool:
    return driver.execute_script("return arguments[0].classList.contains(arguments[1])", element, cls)


@needs_browser
def test_alexnet_in_chromium(driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    page = page_for(tmp_path, ALEXNET)
    open_page(driver, page)
    assert driver.title.startswith("AlexNet (TEST)")

    # Sort by params: largest first (numbers sort descending on the first click), then ascending.
    click_header(driver, "params")
    if visible_rows(driver)[0] != "fc6":
        click_header(driver, "params")
    rows = visible_rows(driver)
    assert rows[:3] == ["fc6", "fc7", "fc8"]
    first = driver.find_element(By.CSS_SELECTOR, "#layers tbody tr")
    assert first.find_element(By.CSS_SELECTOR, "td.num:nth-of-type(4)").text == "37,752,832"
    click_header(driver, "params")
    assert visible_rows(driver)[-3:] == ["fc8", "fc7", "fc6"]
    # A text column sorts A to Z; "#" gives the net's order back.
    click_header(driver, "type")
    assert visible_rows(driver)[0] == "accuracy"
    click_header(driver, "#")
    assert visible_rows(driver)[:3] == ["data", "conv1", "relu1"]

    # Filter by type, case-insensitively; the total row and the memory footer stay.
    box = driver.find_element(By.ID, "filter")
    box.send_keys("pooling")
    assert visible_rows(driver) == ["pool1", "pool2", "pool5"]
    assert driver.find_element(By.CSS_SELECTOR, "#layers tfoot tr.total").is_displayed()
    assert "Inference memory" in driver.find_element(By.CSS_SELECTOR, "ul.memory").text
    assert driver.find_element(By.ID, "count").text == "3 of 25 layers"
    box.send_keys(Keys.BACKSPACE * len("pooling") + "CONV")
    assert visible_rows(driver) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    box.send_keys(Keys.BACKSPACE * len("CONV"))
    assert len(visible_rows(driver)) == 25 and driver.find_element(By.ID, "count").text == "25 layers"

    # Row -> node: conv1 is layer 1.
    click(driver, row_named(driver, "conv1"))
    node = driver.find_element(By.CSS_SELECTOR, "#diagram svg g#L1")
    assert has_class(driver, node, "hl")
    assert has_class(driver, row_named(driver, "conv1"), "hl")
    assert driver.execute_script("return document.querySelectorAll('#diagram .hl').length") == 1
    # relu1 (layer 2) runs in place on conv1's top: its node is conv1's when the diagram folds it in.
    click(driver, row_named(driver, "relu1"))
    assert driver.execute_script(
        "const s = document.querySelector('#diagram svg'), g = s.querySelector('g#L2') || s.querySelector('g.L2');"
        " return g.classList.contains('hl')")

    # Node -> row: fc8 (layer 22) sits far down the table; its row scrolls into the table's pane, and a
    # filter that hides it is cleared.
    pane_top = "return document.querySelector('.tablepane').scrollTop"
    driver.execute_script("document.querySelector('.tablepane').scrollTop = 0")
    box.send_keys("pool")
    assert "fc8" not in visible_rows(driver)
    fc8 = driver.find_element(By.CSS_SELECTOR, "#diagram svg g#L22")
    click(driver, fc8)
    row = row_named(driver, "fc8")
    WebDriverWait(driver, 5).until(lambda d: has_class(d, row, "hl"))
    assert not has_class(driver, row_named(driver, "conv1"), "hl")
    assert has_class(driver, fc8, "hl")
    assert box.get_attribute("value") == "" and len(visible_rows(driver)) == 25
    in_view = ("const r = arguments[0].getBoundingClientRect(), p = document.querySelector('.tablepane')"
               ".getBoundingClientRect(); return r.top >= p.top && r.bottom <= p.bottom")
    WebDriverWait(driver, 5).until(lambda d: d.execute_script(in_view, row))
    if driver.execute_script("const p = document.querySelector('.tablepane'); return p.scrollHeight > p.clientHeight"):
        assert driver.execute_script(pane_top) > 0

    # The state a reader sees after clicking conv1, saved for a person to look at.
    click(driver, row_named(driver, "conv1"))
    WebDriverWait(driver, 5).until(lambda d: d.execute_script(
        "const r = document.querySelector('#diagram g.hl').getBoundingClientRect(),"
        " p = document.getElementById('diagram').getBoundingClientRect();"
        " return r.top >= p.top && r.bottom <= p.bottom"))
    driver.execute_script("return new Promise(r => setTimeout(r, 400))")  # let the smooth scroll settle
    ARTIFACTS.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(tmp_path / "html_report.png"))
    assert driver.save_screenshot(str(ARTIFACTS / "html_report.png"))

    # "Fit diagram" scales the whole diagram into its pane.
    driver.find_element(By.ID, "fit").click()
    assert driver.execute_script(
        "const s = document.querySelector('#diagram svg').getBoundingClientRect(),"
        " p = document.getElementById('diagram').getBoundingClientRect();"
        " return s.height <= p.height && s.width <= p.width")

    assert js_errors(driver) == []


@needs_browser
def test_hostile_names_stay_text_in_chromium(driver, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException

    net = write_net(tmp_path, EVIL_NET, "evil.prototxt")
    rep = netc.report(str(net))
    page = tmp_path / "evil.html"
    page.write_text(render_html(rep, fake_svg(rep.analysis)))
    open_page(driver, page)
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018
    assert driver.execute_script("return document.scripts.length") == 1
    assert EVIL in visible_rows(driver)
    assert driver.title.startswith(EVIL)
    assert js_errors(driver) == []


@needs_browser
def test_module_rows_and_nodes_in_chromium(driver, tmp_path):
    from selenium.webdriver.common.by import By

    net = write_net(tmp_path, MODULE_NET, "modules.prototxt")
    rep = netc.report(str(net))
    page = tmp_path / "modules.html"
    page.write_text(render_html(rep, fake_svg(rep.analysis, {"block": block_layers(rep)}), group_by_prefix=True))
    open_page(driver, page)
    assert visible_rows(driver) == ["input", "stem", "block/*", "head"]
    click(driver, row_named(driver, "block/*"))
    module = driver.find_element(By.CSS_SELECTOR, "#diagram g#M0")
    assert has_class(driver, module, "hl")
    click(driver, row_named(driver, "head"))
    assert not has_class(driver, module, "hl")
    module.click()
    assert has_class(driver, row_named(driver, "block/*"), "hl")
    assert js_errors(driver) == []


@needs_browser
def test_no_graphviz_page_works_in_chromium(driver, tmp_path):
    from selenium.webdriver.common.by import By

    page = tmp_path / "nodot.html"
    page.write_text(render_html(netc.report(str(ROOT / "nets" / "lenet" / "deploy.prototxt")), None))
    open_page(driver, page)
    assert "apt-get install graphviz" in driver.find_element(By.ID, "diagram").text
    assert not driver.find_element(By.ID, "fit").is_enabled()
    click(driver, row_named(driver, "conv1"))  # nothing to highlight, and no error either
    click_header(driver, "params")
    assert visible_rows(driver)[0] == "ip1"
    assert js_errors(driver) == []


@needs_browser
@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot is not installed (apt-get install graphviz)")
@pytest.mark.skipif(not GOOGLENET.is_file(), reason=f"no shared corpus at {GOOGLENET}")
def test_googlenet_modules_in_chromium(driver, tmp_path):
    """--group-by-prefix: one row per inception module, one collapsed node per module, each finds the other."""
    from selenium.webdriver.common.by import By

    page = report_html(tmp_path, GOOGLENET, "--group-by-prefix", name="googlenet.html")
    assert_self_contained(page.read_text())
    open_page(driver, page)
    assert "inception_4a/*" in visible_rows(driver)
    click(driver, row_named(driver, "inception_4a/*"))
    lit = driver.find_elements(By.CSS_SELECTOR, "#diagram svg g.hl")
    assert len(lit) == 1 and has_class(driver, lit[0], "node-module")
    module = lit[0]
    click(driver, row_named(driver, "inception_3a/*"))
    assert not has_class(driver, module, "hl")
    click(driver, module)
    assert has_class(driver, row_named(driver, "inception_4a/*"), "hl")
    assert js_errors(driver) == []
