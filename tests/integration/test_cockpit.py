# The Cockpit page (cockpit/, issue 13) in a real browser: cockpit-ws
# with a local session (cockpit-bridge as the current user), headless
# Chromium driven by selenium through chromium-driver, the built service
# on a private bus that the bridge takes for its system bus, the real
# libvirtd and a real TCG appliance.
#
# The page is served from a `meson install --destdir` of the build, so the
# install lines are tested too.  The domain, its volume and the service
# are test_cli's `env` fixture (a Debian look-alike image).  The tests run
# in file order and share one browser session: list, browse, view,
# upload and download, rename, delete, then the write refused on the
# running domain.  A failing step saves a screenshot (and the page's
# HTML) under the build's meson-logs/cockpit-screenshots/; the listing of
# /etc is saved there as files.png, which the README shows.
#
# Nothing is skipped: a missing cockpit-ws, cockpit-bridge, chromium,
# chromedriver or selenium fails the module.

import contextlib
import glob
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as error:  # a failure, not a skip
    raise ImportError('python3-selenium is needed for the Cockpit test '
                      '(apt-get install python3-selenium): %s' % error) from error

from client import DOMAIN_IFACE, Files, wait_until
from conftest import TOP_SOURCE_DIR
from images import pseudo_random
from test_cli import env, guestfsctl_binary, stop_appliances  # noqa: F401 (env is a fixture)

COCKPIT_WS = '/usr/lib/cockpit/cockpit-ws'
CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
# Steps that may launch an appliance (15-40 s under TCG, more on a busy machine).
APPLIANCE_WAIT = 600
QUICK_WAIT = 60


def build_dir():
    return os.path.dirname(os.path.dirname(os.path.abspath(os.environ['LGD_DAEMON'])))


SCREENSHOT_DIR = None


def screenshot_dir():
    global SCREENSHOT_DIR
    if SCREENSHOT_DIR is None:
        SCREENSHOT_DIR = os.path.join(build_dir(), 'meson-logs', 'cockpit-screenshots')
        os.makedirs(SCREENSHOT_DIR, exist_ok=True)
    return SCREENSHOT_DIR


def require_programs():
    missing = [path for path in (COCKPIT_WS, CHROMIUM, CHROMEDRIVER)
               if not os.access(path, os.X_OK)]
    if shutil.which('cockpit-bridge') is None:
        missing.append('cockpit-bridge')
    if missing:
        pytest.fail('the Cockpit test needs %s: apt-get install cockpit-ws cockpit-bridge '
                    'chromium chromium-driver python3-selenium' % ', '.join(missing),
                    pytrace=False)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def install_page(destdir):
    """meson install of the build into destdir; returns the data directory
    holding cockpit/guestfs (what XDG_DATA_HOME points the bridge at)."""
    meson = os.environ.get('LGD_MESON') or shutil.which('meson')
    result = subprocess.run([meson, 'install', '-C', build_dir(), '--no-rebuild', '--quiet',
                             '--destdir', destdir], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=300)
    assert result.returncode == 0, 'meson install failed:\n' + result.stdout
    manifests = glob.glob(os.path.join(destdir, '**', 'cockpit', 'guestfs', 'manifest.json'),
                          recursive=True)
    assert len(manifests) == 1, 'meson install put no cockpit/guestfs/manifest.json ' \
        'under %s: %r' % (destdir, manifests)
    package = os.path.dirname(manifests[0])
    for name in ('index.html', 'guestfs.js', 'guestfs.css'):
        assert os.path.isfile(os.path.join(package, name)), name + ' is not installed'
    assert os.path.relpath(package, destdir).endswith(os.path.join('share', 'cockpit', 'guestfs'))
    return os.path.dirname(os.path.dirname(package))


class Browser:
    """cockpit-ws, and Chromium on the page."""

    def __init__(self, bus_address):
        require_programs()
        self.tmp = tempfile.mkdtemp(prefix='lgd-test-cockpit-')
        self.downloads = os.path.join(self.tmp, 'downloads')
        os.mkdir(self.downloads)
        self.ws = None
        self.driver = None
        data_home = install_page(os.path.join(self.tmp, 'destdir'))
        self.port = free_port()
        # The bridge's system bus is the test's private bus, and its
        # guestfsctl the built one.
        ws_env = dict(os.environ, XDG_DATA_HOME=data_home, DBUS_SYSTEM_BUS_ADDRESS=bus_address,
                   PATH=os.path.dirname(guestfsctl_binary()) + ':' + os.environ['PATH'])
        self.ws_log = open(os.path.join(self.tmp, 'cockpit-ws.log'), 'w+')
        self.ws = subprocess.Popen(
            [COCKPIT_WS, '--no-tls', '--address', '127.0.0.1', '--port', str(self.port),
             '--local-session=cockpit-bridge'],
            env=ws_env, stdin=subprocess.DEVNULL, stdout=self.ws_log, stderr=subprocess.STDOUT)

        def listening():
            assert self.ws.poll() is None, 'cockpit-ws exited:\n' + self.log()
            with contextlib.suppress(OSError), socket.create_connection(('127.0.0.1', self.port), 1):
                return True
            return False
        wait_until(listening, 30, 'cockpit-ws to listen')

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                    '--window-size=1280,1000', '--lang=en-US'):
            options.add_argument(arg)
        options.add_experimental_option('prefs', {
            'download.default_directory': self.downloads,
            'download.prompt_for_download': False})
        options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.execute_cdp_cmd('Page.setDownloadBehavior',
                                    {'behavior': 'allow', 'downloadPath': self.downloads})
        self.url = 'http://127.0.0.1:%d/cockpit/@localhost/guestfs/index.html' % self.port

    def log(self):
        self.ws_log.flush()
        self.ws_log.seek(0)
        return self.ws_log.read()

    def close(self):
        if self.driver is not None:
            self.driver.quit()
        if self.ws is not None:
            self.ws.terminate()
            try:
                self.ws.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.ws.kill()
                self.ws.wait()
            self.ws_log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- Looking at the page ---------------------------------------------------

    def save(self, name):
        path = os.path.join(screenshot_dir(), name + '.png')
        self.driver.save_screenshot(path)
        with open(os.path.join(screenshot_dir(), name + '.html'), 'w') as f:
            f.write(self.driver.page_source)
        return path

    @contextlib.contextmanager
    def step(self, name):
        """A step of a test: on failure, a screenshot, the page and the
        browser's console go with the error."""
        try:
            yield
        except Exception as error:
            try:
                shot = self.save('failed-' + name)
                console = '\n'.join(str(entry) for entry in self.driver.get_log('browser'))
            except Exception as inner:  # the browser itself is gone
                shot, console = 'none (%s)' % inner, ''
            raise AssertionError('step %r failed: %s\nscreenshot: %s\nbrowser console:\n%s\n'
                                 'cockpit-ws:\n%s' % (name, error, shot, console, self.log())) from error

    def wait(self, condition, timeout=QUICK_WAIT, what='the page', errors_fail=True):
        """condition()'s first true value; an error alert on the page
        fails at once (unless errors_fail is false), rather than after the
        timeout."""
        def attempt(driver):
            try:
                if errors_fail and self.find('#alerts .alert'):
                    raise AssertionError('waiting for %s, the page shows errors: %r'
                                         % (what, self.alerts()))
                return condition()
            except StaleElementReferenceException:
                return False
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.3).until(attempt)
        except TimeoutException:
            raise AssertionError('waited %d s for %s' % (timeout, what)) from None

    def find(self, css, within=None):
        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def one(self, css, timeout=QUICK_WAIT, errors_fail=True):
        return self.wait(lambda: (self.find(css) or [None])[0], timeout, css, errors_fail)

    def click(self, css, timeout=QUICK_WAIT, errors_fail=True):
        element = self.wait(lambda: next((e for e in self.find(css) if e.is_displayed()
                                          and e.is_enabled()), None), timeout, 'clickable ' + css,
                            errors_fail)
        element.click()

    def idle(self, timeout=APPLIANCE_WAIT, errors_fail=True):
        """Waits until no call of the page is in flight."""
        self.wait(lambda: self.driver.find_element(By.TAG_NAME, 'body').get_attribute('data-busy')
                  != 'true', timeout, 'the page\'s calls to finish', errors_fail)

    def alerts(self):
        return [(a.get_attribute('data-error'), a.text) for a in self.find('#alerts .alert')]

    def no_alerts(self):
        assert self.alerts() == [], 'the page shows errors: %r' % self.alerts()

    def answer_dialog(self, text=None):
        dialog = self.one('dialog#dialog[open]')
        if text is not None:
            field = dialog.find_element(By.ID, 'dialog-input')
            field.clear()
            field.send_keys(text)
        self.click('#dialog-ok')

    # --- The file browser ---------------------------------------------------------

    def file_row(self, name):
        return (self.find('#files tbody tr[data-name="%s"]' % name) or [None])[0]

    def listed(self):
        return [row.get_attribute('data-name') for row in self.find('#files tbody tr[data-name]')]

    def listing_of(self, path):
        self.wait(lambda: self.one('#files').get_attribute('data-path') == path,
                  APPLIANCE_WAIT, 'the listing of ' + path)
        self.idle()
        return self.listed()


@pytest.fixture(scope='module')
def browser(env, private_bus):  # noqa: F811 (env is test_cli's fixture)
    b = Browser(private_bus.address)
    try:
        b.driver.get(b.url)
        yield b
    finally:
        b.close()


@pytest.fixture(autouse=True)
def no_earlier_alerts(browser):
    """Each test starts without the alerts an earlier one left (so that
    one failure does not fail every later test)."""
    browser.driver.execute_script('document.getElementById("alerts").replaceChildren()')


@pytest.fixture(scope='module')
def files_api(env, private_bus):  # noqa: F811
    api = Files(env.daemon.client.connection, private_bus.address)
    yield api
    api.close()


def domain_row(b, name):
    return (b.find('#domains tbody tr[data-name="%s"]' % name) or [None])[0]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# --- The tests, in order --------------------------------------------------------------

def test_guest_list_shows_the_domain_and_its_distribution(browser, env):  # noqa: F811
    b = browser
    with b.step('list'):
        b.wait(lambda: b.one('body').get_attribute('data-ready') == 'true', QUICK_WAIT,
               'the page to load the service\'s objects')
        row = b.wait(lambda: domain_row(b, env.dom), QUICK_WAIT, 'the row of ' + env.dom)
        assert row.find_element(By.CSS_SELECTOR, '.state').text == 'shut off'
        # the module's service is new: nothing has launched an appliance yet
        assert row.find_element(By.CSS_SELECTOR, '.appliance').text == 'stopped'
        # the volume of test_cli's pool is in the second table
        b.wait(lambda: any(r.get_attribute('data-name') == 'cli-volume.img'
                           for r in b.find('#volumes tbody tr')), QUICK_WAIT, 'the volume row')

    with b.step('inspect'):
        # Nothing is known until an inspection: the page offers one.
        assert b.find('#domains tbody tr[data-name="%s"] button.inspect' % env.dom)
        b.click('#domains tbody tr[data-name="%s"] button.inspect' % env.dom)
        # the appliance's launch is a Job object, which the page shows
        job = '#jobs .job[data-operation="appliance-launch"]'
        b.wait(lambda: any(env.dom in j.get_attribute('data-objects').split()
                           for j in b.find(job)), APPLIANCE_WAIT, 'the launch job')
        expected = 'debian %d.%d' % (env.root.major, env.root.minor)
        b.wait(lambda: expected in domain_row(b, env.dom).find_element(
            By.CSS_SELECTOR, '.os').text, APPLIANCE_WAIT, 'the OS in the list')
        os_text = domain_row(b, env.dom).find_element(By.CSS_SELECTOR, '.os').text
        # a product name, when libguestfs found one, comes first
        assert os_text in (expected, '%s (%s)' % (env.root.product_name, expected)), os_text
        assert not b.find('#domains tbody tr[data-name="%s"] button.inspect' % env.dom)
        # live: the appliance the inspection launched shows as running
        b.wait(lambda: domain_row(b, env.dom).find_element(By.CSS_SELECTOR, '.appliance').text
               == 'running', QUICK_WAIT, 'the appliance state')
        b.wait(lambda: not any(env.dom in j.get_attribute('data-objects').split()
                               for j in b.find('#jobs .job')), QUICK_WAIT, 'the job to end')
        # with the OS known and the appliance up, the row shows the guest's
        # icon (GetIcon), a PNG the browser could decode
        icon = '#domains tbody tr[data-name="%s"] .os img.guest-icon' % env.dom
        b.wait(lambda: b.driver.execute_script(
            'const i = document.querySelector(arguments[0]);'
            'return i !== null && i.complete && i.naturalWidth > 0;', icon),
            APPLIANCE_WAIT, 'the icon in the list')
        b.no_alerts()


def test_browse_to_etc_lists_hostname(browser, env):  # noqa: F811
    b = browser
    with b.step('open'):
        b.click('#domains tbody tr[data-name="%s"] button.open' % env.dom)
        names = b.listing_of('/')
        assert 'etc' in names, names
        assert b.file_row('etc').get_attribute('data-type') == 'directory'
    with b.step('browse-etc'):
        b.click('#files tbody tr[data-name="etc"] a.entry')
        names = b.listing_of('/etc')
        assert 'hostname' in names and 'os-release' in names, names
        crumbs = [li.text for li in b.find('#breadcrumb li')]
        assert crumbs == ['/', 'etc'], crumbs
        row = b.file_row('hostname')
        assert row.find_element(By.CSS_SELECTOR, '.mode').text == '-rw-r--r--'
        assert row.find_element(By.CSS_SELECTOR, '.size').text == '%d B' % (
            len(env.root.hostname) + 1)
        b.no_alerts()
        b.save('files')


def test_view_hostname(browser, env):  # noqa: F811
    b = browser
    with b.step('view'):
        b.click('#files tbody tr[data-name="hostname"] a.entry')
        b.wait(lambda: b.one('#viewer').get_attribute('data-path') == '/etc/hostname',
               APPLIANCE_WAIT, 'the viewer')
        content = b.one('#viewer-content').get_attribute('value')
        assert content == env.root.hostname + '\n'
        assert b.one('#viewer-path').text == '/etc/hostname'
        b.no_alerts()
        b.click('#viewer-close')
        # back up through the breadcrumb
        b.click('#breadcrumb a[data-path="/"]')
        assert 'etc' in b.listing_of('/')


def test_system_tab_shows_os_filesystems_and_applications(browser, env, files_api):  # noqa: F811
    b = browser
    with b.step('system'):
        b.click('#tab-system')
        b.wait(lambda: b.one('#system').get_attribute('data-loaded') == 'true', APPLIANCE_WAIT,
               'the System tab to load')
        b.idle()
        b.no_alerts()
        details = {dd.get_attribute('data-key'): dd.text for dd in b.find('#os-details dd')}
        assert details['Hostname'] == env.root.hostname, details
        assert details['Distribution'] == 'debian', details
        assert details['Version'] == '%d.%d' % (env.root.major, env.root.minor), details
        # the icon is a PNG the browser could decode
        assert b.driver.execute_script(
            'const i = document.getElementById("os-icon");'
            'return i.hidden ? 0 : i.complete && i.naturalWidth;') > 0

        apps = [row.get_attribute('data-name') for row in b.find('#apps tbody tr')]
        assert sorted(apps) == sorted(p.name for p in env.root.packages), apps
        wanted = env.root.packages[0]
        b.one('#apps-filter').send_keys(wanted.name)
        b.wait(lambda: [r.get_attribute('data-name') for r in b.find('#apps tbody tr')]
               == [wanted.name], QUICK_WAIT, 'the filtered applications')
        row = b.find('#apps tbody tr')[0]
        assert row.find_element(By.CSS_SELECTOR, '.version').text == wanted.dpkg_version()

        usage = files_api.disk_usage(env.dom_path)
        rows = b.find('#usage tbody tr')
        assert sorted(r.get_attribute('data-device') for r in rows) == \
            sorted(fs['device'] for fs in usage)
        for fs in usage:
            bar = b.one('#usage tbody tr[data-device="%s"] .bar' % fs['device'])
            percent = int(bar.get_attribute('data-percent'))
            assert percent == round(100 * fs['used'] / fs['size']), (percent, fs)
            assert fs['used'] > 0 and 0 <= percent < 100, fs
        b.save('system')
        b.click('#tab-files')
        assert b.one('#files-tab').is_displayed()


def test_edit_and_save_a_text_file(browser, env, files_api):  # noqa: F811
    b = browser
    new_content = 'cockpit-edited-host\n'
    with b.step('edit'):
        b.listing_of('/')
        b.click('#files tbody tr[data-name="etc"] a.entry')
        b.listing_of('/etc')
        b.click('#files tbody tr[data-name="hostname"] a.entry')
        b.wait(lambda: b.one('#viewer').get_attribute('data-path') == '/etc/hostname',
               APPLIANCE_WAIT, 'the viewer')
        assert b.one('#viewer-content').get_attribute('readonly') is not None
        b.click('#viewer-edit')
        area = b.one('#viewer-content')
        area.clear()
        area.send_keys(new_content)
        b.click('#viewer-save')
        b.wait(lambda: b.one('#viewer-content').get_attribute('readonly') is not None,
               APPLIANCE_WAIT, 'the save to finish')
        b.idle()
        b.no_alerts()
        assert b.file_row('hostname').find_element(By.CSS_SELECTOR, '.size').text == \
            '%d B' % len(new_content)
    assert files_api.read_file(env.dom_path, '/etc/hostname') == new_content.encode()
    # the mode and owner stay (WriteFile replaces atomically, keeping them)
    info = files_api.stat(env.dom_path, '/etc/hostname')
    assert (info['mode'] & 0o7777, info['uid'], info['gid']) == (0o644, 0, 0)
    with b.step('back-to-root'):
        b.click('#viewer-close')
        b.click('#breadcrumb a[data-path="/"]')
        b.listing_of('/')


UPLOAD_NAME = 'cockpit-upload.bin'


def test_upload_then_download_gives_the_same_bytes(browser, env, files_api, tmp_path):  # noqa: F811
    b = browser
    data = pseudo_random(300 * 1024 + 7, seed=13) + b'\0\n\xff'
    source = tmp_path / UPLOAD_NAME
    source.write_bytes(data)
    with b.step('upload'):
        b.listing_of('/')
        b.one('#upload-input').send_keys(str(source))
        b.wait(lambda: UPLOAD_NAME in b.listed(), APPLIANCE_WAIT, 'the uploaded file listed')
        b.idle()
        b.no_alerts()
        assert b.file_row(UPLOAD_NAME).find_element(By.CSS_SELECTOR, '.size').text == '300 KiB'
    # on the disk, through the D-Bus API
    on_disk = files_api.read_file(env.dom_path, '/' + UPLOAD_NAME)
    assert sha256(on_disk) == sha256(data)

    with b.step('download'):
        target = os.path.join(b.downloads, UPLOAD_NAME)
        b.click('#files tbody tr[data-name="%s"] button.download' % UPLOAD_NAME)
        b.wait(lambda: os.path.exists(target) and os.path.getsize(target) == len(data)
               and not glob.glob(target + '*.crdownload'), APPLIANCE_WAIT, 'the download')
        time.sleep(0.5)
        b.no_alerts()
        with open(target, 'rb') as f:
            assert sha256(f.read()) == sha256(data)


def test_rename_and_delete_show_in_the_listing_and_on_the_disk(browser, env, files_api):  # noqa: F811
    b = browser
    renamed = 'cockpit-renamed.bin'
    with b.step('rename'):
        b.click('#files tbody tr[data-name="%s"] button.rename' % UPLOAD_NAME)
        b.answer_dialog(renamed)
        b.wait(lambda: renamed in b.listed() and UPLOAD_NAME not in b.listed(), APPLIANCE_WAIT,
               'the renamed file in the listing')
        b.idle()
        b.no_alerts()
    names = [entry['name'] for entry in files_api.read_dir(env.dom_path, '/')]
    assert renamed in names and UPLOAD_NAME not in names, names

    with b.step('mkdir'):
        b.click('#mkdir')
        b.answer_dialog('cockpit-folder')
        b.wait(lambda: 'cockpit-folder' in b.listed(), APPLIANCE_WAIT, 'the new folder')
        b.idle()
        b.no_alerts()
        assert b.file_row('cockpit-folder').get_attribute('data-type') == 'directory'
    assert files_api.stat(env.dom_path, '/cockpit-folder')['type'] == 'directory'

    with b.step('chmod'):
        b.click('#files tbody tr[data-name="%s"] button.chmod' % renamed)
        b.answer_dialog('0600')
        b.wait(lambda: b.file_row(renamed).find_element(By.CSS_SELECTOR, '.mode').text
               == '-rw-------', APPLIANCE_WAIT, 'the new mode in the listing')
        b.idle()
        b.no_alerts()
    assert files_api.stat(env.dom_path, '/' + renamed)['mode'] & 0o7777 == 0o600

    # a symbolic link (made through the API) is shown as one, and a click
    # on it views what it points to
    files_api.symlink(env.dom_path, '/etc/hostname', '/cockpit-link')
    with b.step('symlink'):
        b.click('#refresh')
        b.wait(lambda: 'cockpit-link' in b.listed(), APPLIANCE_WAIT, 'the link listed')
        b.idle()
        row = b.file_row('cockpit-link')
        assert row.get_attribute('data-type') == 'symlink'
        assert row.find_element(By.CSS_SELECTOR, '.link-target').text == '→ /etc/hostname'
        assert row.find_element(By.CSS_SELECTOR, '.mode').text.startswith('l')
        b.click('#files tbody tr[data-name="cockpit-link"] a.entry')
        b.wait(lambda: b.one('#viewer').get_attribute('data-path') == '/cockpit-link',
               APPLIANCE_WAIT, 'the viewer on the link')
        assert b.one('#viewer-content').get_attribute('value') == \
            files_api.read_file(env.dom_path, '/etc/hostname').decode()
        b.click('#viewer-close')
        b.click('#files tbody tr[data-name="cockpit-link"] button.delete')
        b.answer_dialog()
        b.wait(lambda: 'cockpit-link' not in b.listed(), APPLIANCE_WAIT, 'the link deleted')
        b.idle()
        b.no_alerts()
    # the link went, not its target
    assert files_api.stat(env.dom_path, '/etc/hostname')['type'] == 'regular'

    with b.step('delete-cancelled'):
        b.click('#files tbody tr[data-name="%s"] button.delete' % renamed)
        b.one('dialog#dialog[open]')
        b.click('#dialog-cancel')
        b.wait(lambda: not b.find('dialog#dialog[open]'), QUICK_WAIT, 'the dialog to close')
        b.idle()
        assert renamed in b.listed()
    assert renamed in [entry['name'] for entry in files_api.read_dir(env.dom_path, '/')]

    with b.step('delete'):
        for name in (renamed, 'cockpit-folder'):
            b.click('#files tbody tr[data-name="%s"] button.delete' % name)
            b.answer_dialog()
            b.wait(lambda: name not in b.listed(), APPLIANCE_WAIT, name + ' gone from the listing')
            b.idle()
            b.no_alerts()
    names = [entry['name'] for entry in files_api.read_dir(env.dom_path, '/')]
    assert renamed not in names and 'cockpit-folder' not in names, names


def test_write_on_running_domain_says_domain_running(browser, env, files_api):  # noqa: F811
    b = browser
    # The appliance holds the disk read-write after the writes: stop it so
    # that libvirt lets the domain start.
    stop_appliances(env.daemon)
    dom = env.virt.conn.lookupByName(env.dom)
    dom.create()
    try:
        with b.step('running'):
            b.wait(lambda: b.one('#guest-state').text == 'running', QUICK_WAIT,
                   'the page to see the domain run')
            assert b.one('#running-note').is_displayed()
        with b.step('domain-running'):
            b.click('#mkdir')
            b.answer_dialog('cockpit-not-written')
            b.wait(lambda: b.alerts(), APPLIANCE_WAIT, 'an error', errors_fail=False)
            b.idle(errors_fail=False)
            ((name, text),) = b.alerts()
            assert name == 'DomainRunning', b.alerts()
            assert 'shut' in text and 'running' in text, text
            b.save('domain-running')
            # the upload through guestfsctl says the same
            b.click('#alerts .alert-close', errors_fail=False)
        with b.step('upload-refused'):
            b.one('#upload-input').send_keys(os.path.join(TOP_SOURCE_DIR, 'README.md'))
            b.wait(lambda: b.alerts(), APPLIANCE_WAIT, 'an error', errors_fail=False)
            b.idle(errors_fail=False)
            assert [name for name, _ in b.alerts()] == ['DomainRunning'], b.alerts()
    finally:
        dom.destroy()
    wait_until(lambda: not env.daemon.client.get_property(env.dom_path, DOMAIN_IFACE, 'Active'),
               30, 'the domain to stop')

    # Nothing launched an appliance for the refused writes: a refresh
    # launches one, shown as a job, and its Cancel ends the listing.
    assert env.daemon.client.state(env.dom_path) == 'stopped'
    with b.step('cancel-launch'):
        b.driver.execute_script('document.getElementById("alerts").replaceChildren()')
        b.wait(lambda: b.one('#guest-state').text == 'shut off', QUICK_WAIT, 'the domain shut off')
        b.click('#refresh')
        b.click('#jobs .job[data-operation="appliance-launch"] button.cancel', APPLIANCE_WAIT)
        b.wait(lambda: b.alerts(), APPLIANCE_WAIT, 'the listing to fail', errors_fail=False)
        assert [name for name, _ in b.alerts()] == ['Cancelled'], b.alerts()
        b.wait(lambda: not b.find('#jobs .job'), QUICK_WAIT, 'the job to go', errors_fail=False)
        b.idle(errors_fail=False)
    names = [entry['name'] for entry in files_api.read_dir(env.dom_path, '/')]
    assert 'cockpit-not-written' not in names and 'README.md' not in names, names
