/* Guest files: a Cockpit page for libvirt-guestfs-dbus.
 *
 * Everything goes through the service on the system bus: the list of
 * domains and volumes (with the operating system the service last found)
 * from its ObjectManager, files through org.libvirt.GuestFS.Files.  File
 * data in bulk (downloads, uploads) goes through guestfsctl, because a
 * Cockpit page cannot pass file descriptors over D-Bus.  Nothing is
 * written without an explicit action of the user. */

"use strict";

const BUS_NAME = "org.libvirt.GuestFS";
const ROOT_PATH = "/org/libvirt/GuestFS";
const IFACE = {
    domain: BUS_NAME + ".Domain",
    volume: BUS_NAME + ".Volume",
    inspector: BUS_NAME + ".Inspector",
    files: BUS_NAME + ".Files",
    job: BUS_NAME + ".Job",
};
const ERROR_PREFIX = BUS_NAME + ".Error.";
/* Larger files are offered for download rather than shown. */
const VIEW_LIMIT = 1024 * 1024;
/* An appliance launch under emulation can take minutes: no call times out
 * (G_MAXINT milliseconds, which GDBus takes as "no timeout"). */
const NO_TIMEOUT = 2147483647;
/* guestfsctl's exit statuses (guestfsctl(1)) that need a sentence. */
const EXIT_NAMES = { 3: "NotFound", 4: "NotAuthorized", 5: "DomainRunning", 6: "InUse" };

const $ = (id) => document.getElementById(id);

/* --- Errors ------------------------------------------------------------ */

const MESSAGES = {
    DomainRunning: "The guest is running. Its files can be read while it runs, but changing " +
        "them needs the guest shut off: shut it down, then try again.",
    NotAuthorized: "Not authorized. polkit refused this action (the org.libvirt.guestfs.* " +
        "actions). Turn on administrative access in Cockpit (the \"Limited access\" button " +
        "at the top of the page), or ask an administrator for a polkit rule that allows it.",
    NotFound: "No such file or directory (or the guest is gone).",
    InUse: "The disk is in use by something else; try again when it is free.",
    ApplianceFailed: "The libguestfs appliance failed to start or died; the next action starts " +
        "a new one.",
    TooLarge: "The file is too large for this action; download it instead.",
    Cancelled: "Cancelled.",
};

/* An error of a D-Bus call or of guestfsctl as {name, text}. */
function describeError(error) {
    let name = "";
    let detail = "";
    if (error && typeof error.name === "string" && error.name.startsWith(ERROR_PREFIX)) {
        name = error.name.substring(ERROR_PREFIX.length);
        detail = error.message || "";
    } else if (error && error.exit_status !== undefined && error.exit_status !== null) {
        name = EXIT_NAMES[error.exit_status] || "Failed";
        detail = (error.message || "").trim();
    } else if (error && error.problem) {
        detail = cockpit.message(error);
        if (error.problem === "not-found")
            detail = "guestfsctl is not installed (" + detail + ")";
        if (error.problem === "access-denied")
            name = "NotAuthorized";
    } else {
        detail = (error && error.message) ? error.message : String(error);
    }
    const text = MESSAGES[name] ? MESSAGES[name] + (detail ? " (" + detail + ")" : "") : detail;
    return { name: name || "Failed", text: text || "Failed" };
}

function showAlert(error, what) {
    const { name, text } = describeError(error);
    const div = document.createElement("div");
    div.className = "alert alert-danger";
    div.dataset.error = name;
    div.setAttribute("role", "alert");
    const strong = document.createElement("strong");
    strong.textContent = what ? what + ": " : "";
    const span = document.createElement("span");
    span.className = "alert-text";
    span.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "btn btn-link alert-close";
    close.textContent = "×";
    close.title = "Dismiss";
    close.addEventListener("click", () => div.remove());
    div.append(strong, span, close);
    $("alerts").append(div);
}

function clearAlerts() {
    $("alerts").replaceChildren();
}

/* Counts the calls in flight, for the "Working…" indicator. */
let busyCount = 0;
function busy(promise) {
    busyCount++;
    $("busy").hidden = false;
    document.body.dataset.busy = "true";
    const done = () => {
        if (--busyCount === 0) {
            $("busy").hidden = true;
            document.body.dataset.busy = "false";
        }
    };
    return Promise.resolve(promise).then((value) => { done(); return value }, (error) => { done(); throw error });
}

/* --- D-Bus ------------------------------------------------------------- */

/* superuser "try": with administrative access the calls come from root
 * (which polkit allows), without it from the user (polkit decides). */
const client = cockpit.dbus(BUS_NAME, { bus: "system", superuser: "try" });

function call(path, iface, method, signature, args) {
    return busy(client.call(path, iface, method, args, { type: signature, timeout: NO_TIMEOUT }));
}

const variant = (type, value) => cockpit.variant(type, value);
/* An a{sv} entry as the bridge gives it: {t, v} */
const val = (dict, key) => (dict && dict[key] !== undefined) ? dict[key].v : undefined;

function osSummary(systems) {
    if (!systems || systems.length === 0)
        return "";
    return systems.map((os) => {
        const product = val(os, "product-name");
        const distro = val(os, "distro") || val(os, "type") || "unknown";
        const version = val(os, "major-version") !== undefined
            ? val(os, "major-version") + "." + val(os, "minor-version") : "";
        const what = distro + (version ? " " + version : "");
        /* libguestfs falls back to the bare version for a product name */
        const named = product && product !== "unknown" && !/^[0-9.]+$/.test(product);
        return named ? product + " (" + what + ")" : what;
    }).join(", ");
}

/* --- The list of guests --------------------------------------------------- */

const domains = client.proxies(IFACE.domain, ROOT_PATH);
const volumes = client.proxies(IFACE.volume, ROOT_PATH);
const inspectors = client.proxies(IFACE.inspector, ROOT_PATH);

function systemsOf(path) {
    const inspector = inspectors[path];
    return (inspector && inspector.valid) ? inspector.OperatingSystems : [];
}

function actionButton(label, cls, handler) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn " + cls;
    button.textContent = label;
    button.addEventListener("click", handler);
    return button;
}

function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls)
        td.className = cls;
    row.append(td);
    return td;
}

function inspect(path, name) {
    clearAlerts();
    return call(path, IFACE.inspector, "Inspect", "a{sv}", [{}])
        .then(() => renderAll())
        .catch((error) => showAlert(error, "Inspecting " + name));
}

// Icons (GetIcon), cached in the page: asked for once per guest when its
// OS is known and its appliance runs, so that the list never launches an
// appliance. path -> data URL, "" while asked or when there is none.
const icons = {};

function fetchIcon(path, root) {
    if (path in icons || !root)
        return;
    icons[path] = "";
    call(path, IFACE.inspector, "GetIcon", "sa{sv}", [root, {}])
            .then(([png]) => {
                if (png) {
                    icons[path] = "data:image/png;base64," + png;
                    renderAll();
                }
            })
            .catch(() => {}); // no icon is no error: the row shows none
}

function guestRow(path, kind, proxy) {
    const row = document.createElement("tr");
    row.dataset.path = path;
    row.dataset.name = proxy.Name;
    const systems = systemsOf(path);
    if (kind === "domain") {
        cell(row, proxy.Name, "name");
        const state = cell(row, proxy.Active ? "running" : "shut off", "state");
        state.dataset.active = proxy.Active ? "true" : "false";
    } else {
        cell(row, proxy.Name, "name");
        cell(row, proxy.Pool, "pool");
    }
    const os = cell(row, osSummary(systems) || "unknown", "os");
    if (icons[path]) {
        const img = document.createElement("img");
        img.className = "guest-icon";
        img.alt = "";
        img.src = icons[path];
        os.prepend(img);
    } else if (systems.length && proxy.ApplianceState === "running") {
        fetchIcon(path, val(systems[0], "root"));
    }
    cell(row, proxy.ApplianceState, "appliance");
    const actions = cell(row, "", "actions");
    actions.append(actionButton("Files", "btn-primary open", () => openGuest(path, kind)));
    if (systems.length === 0)
        actions.append(actionButton("Inspect", "inspect", () => inspect(path, proxy.Name)));
    return row;
}

function renderList(table, collection, kind) {
    const paths = Object.keys(collection).filter((p) => collection[p].valid).sort((a, b) =>
        String(collection[a].Name).localeCompare(String(collection[b].Name)));
    const rows = paths.map((path) => guestRow(path, kind, collection[path]));
    if (rows.length === 0) {
        const row = document.createElement("tr");
        const td = cell(row, kind === "domain" ? "No virtual machines." : "No volumes.", "muted");
        td.colSpan = 5;
        rows.push(row);
    }
    $(table).querySelector("tbody").replaceChildren(...rows);
}

function renderAll() {
    renderList("domains", domains, "domain");
    renderList("volumes", volumes, "volume");
    if (current)
        renderGuestSummary();
}

for (const collection of [domains, volumes, inspectors]) {
    collection.addEventListener("added", renderAll);
    collection.addEventListener("changed", renderAll);
    collection.addEventListener("removed", (event, proxy) => {
        if (current && proxy.path === current.path && proxy.iface !== IFACE.inspector) {
            showAlert({ message: "The guest " + current.name + " went away." }, "Guest");
            closeGuest();
        }
        renderAll();
    });
}

Promise.all([domains.wait(), volumes.wait(), inspectors.wait()])
        .then(() => {
            $("service-state").hidden = true;
            document.body.dataset.ready = "true";
            renderAll();
        })
        .catch((error) => showAlert(error, "Listing the guests"));
client.addEventListener("close", (event, options) => {
    $("service-state").hidden = false;
    $("service-state").textContent = "The libvirt-guestfs-dbus service is not reachable on " +
        "the system bus (" + (options.problem || "closed") + "). Is it installed and running?";
});
client.addEventListener("owner", (event, owner) => {
    if (owner === null) {
        $("service-state").hidden = false;
        $("service-state").textContent = "The libvirt-guestfs-dbus service is not running.";
    } else if (owner) {
        $("service-state").hidden = true;
    }
});

/* --- One guest: its files -------------------------------------------------- */

/* {path, kind, name, id (what guestfsctl takes), dir} */
let current = null;

function proxyOf(guest) {
    return (guest.kind === "domain" ? domains : volumes)[guest.path];
}

function renderGuestSummary() {
    const proxy = proxyOf(current);
    if (!proxy || !proxy.valid)
        return;
    $("guest-name").textContent = proxy.Name;
    const running = current.kind === "domain" && proxy.Active;
    $("guest-state").textContent = current.kind === "domain" ? (running ? "running" : "shut off") : "volume";
    $("guest-state").dataset.active = running ? "true" : "false";
    $("running-note").hidden = !running;
    $("guest-os").textContent = osSummary(systemsOf(current.path));
    $("guest-appliance").textContent = "appliance: " + proxy.ApplianceState;
}

function openGuest(path, kind) {
    const proxy = (kind === "domain" ? domains : volumes)[path];
    clearAlerts();
    current = {
        path,
        kind,
        name: proxy.Name,
        id: kind === "domain" ? proxy.UUID : proxy.Key,
        dir: "/",
    };
    $("guests-view").hidden = true;
    $("guest-view").hidden = false;
    closeViewer();
    showTab("files");
    resetSystem();
    renderGuestSummary();
    loadDir("/");
}

function closeGuest() {
    current = null;
    $("guest-view").hidden = true;
    $("guests-view").hidden = false;
    renderAll();
}

function joinPath(dir, name) {
    return dir === "/" ? "/" + name : dir + "/" + name;
}

function parentOf(path) {
    const i = path.lastIndexOf("/");
    return i <= 0 ? "/" : path.substring(0, i);
}

function formatSize(bytes) {
    if (bytes < 1024)
        return bytes + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let i = -1;
    do {
        value /= 1024;
        i++;
    } while (value >= 1024 && i < units.length - 1);
    return value.toFixed(value < 10 ? 1 : 0) + " " + units[i];
}

const TYPE_CHARS = { regular: "-", directory: "d", symlink: "l", char: "c", block: "b", fifo: "p", socket: "s" };

function formatMode(type, mode) {
    const bits = "rwxrwxrwx";
    let text = TYPE_CHARS[type] || "?";
    for (let i = 0; i < 9; i++)
        text += (mode & (1 << (8 - i))) ? bits[i] : "-";
    /* setuid, setgid, sticky */
    const special = [[0o4000, 3, "s"], [0o2000, 6, "s"], [0o1000, 9, "t"]];
    for (const [bit, pos, ch] of special) {
        if (mode & bit) {
            const x = text[pos] === "x";
            text = text.substring(0, pos) + (x ? ch : ch.toUpperCase()) + text.substring(pos + 1);
        }
    }
    return text;
}

function formatTime(seconds) {
    if (seconds === undefined)
        return "";
    return new Date(seconds * 1000).toISOString().replace("T", " ").substring(0, 16);
}

function renderBreadcrumb(dir) {
    const items = [];
    const parts = dir === "/" ? [] : dir.substring(1).split("/");
    const crumb = (label, target, last) => {
        const li = document.createElement("li");
        if (last) {
            li.textContent = label;
            li.className = "active";
        } else {
            const a = document.createElement("a");
            a.href = "#";
            a.textContent = label;
            a.dataset.path = target;
            a.addEventListener("click", (event) => {
                event.preventDefault();
                loadDir(target);
            });
            li.append(a);
        }
        return li;
    };
    items.push(crumb("/", "/", parts.length === 0));
    let path = "";
    parts.forEach((part, i) => {
        path += "/" + part;
        items.push(crumb(part, path, i === parts.length - 1));
    });
    $("breadcrumb").replaceChildren(...items);
    $("breadcrumb").dataset.path = dir;
}

function fileRow(entry) {
    const name = val(entry, "name");
    const type = val(entry, "type");
    const path = joinPath(current.dir, name);
    const row = document.createElement("tr");
    row.dataset.name = name;
    row.dataset.type = type;
    const nameCell = cell(row, "", "name");
    const link = document.createElement("a");
    link.href = "#";
    link.className = "entry entry-" + type;
    link.textContent = name + (type === "directory" ? "/" : "");
    link.addEventListener("click", (event) => {
        event.preventDefault();
        activate(path, type);
    });
    nameCell.append(link);
    if (type === "symlink") {
        const target = document.createElement("span");
        target.className = "link-target";
        target.textContent = " → " + val(entry, "link-target");
        nameCell.append(target);
    }
    cell(row, type === "directory" ? "" : formatSize(val(entry, "size")), "size");
    cell(row, formatMode(type, val(entry, "mode")), "mode");
    cell(row, val(entry, "uid") + ":" + val(entry, "gid"), "owner");
    cell(row, formatTime(val(entry, "mtime")), "mtime");
    const actions = cell(row, "", "actions");
    if (type === "regular")
        actions.append(actionButton("Download", "download", () => download(path)));
    actions.append(actionButton("Rename", "rename", () => renameEntry(path, name)));
    actions.append(actionButton("Mode", "chmod", () => chmodEntry(path, val(entry, "mode"))));
    actions.append(actionButton("Delete", "btn-danger delete", () => deleteEntry(path, type)));
    return row;
}

const TYPE_ORDER = { directory: 0, symlink: 1 };

function loadDir(dir) {
    const guest = current;
    return call(guest.path, IFACE.files, "ReadDir", "sa{sv}", [dir, {}])
        .then(([entries]) => {
            if (current !== guest)
                return;
            current.dir = dir;
            renderBreadcrumb(dir);
            entries.sort((a, b) => ((TYPE_ORDER[val(a, "type")] ?? 2) - (TYPE_ORDER[val(b, "type")] ?? 2)) ||
                val(a, "name").localeCompare(val(b, "name")));
            const rows = entries.map(fileRow);
            if (rows.length === 0) {
                const row = document.createElement("tr");
                cell(row, "(empty directory)", "muted").colSpan = 6;
                rows.push(row);
            }
            const tbody = $("files").querySelector("tbody");
            tbody.replaceChildren(...rows);
            $("files").dataset.path = dir;
            $("files").dataset.loaded = String(Date.now());
        })
        .catch((error) => showAlert(error, "Listing " + dir));
}

/* A click on an entry: directories open, files are viewed, links are
 * looked at through (the service follows them as the guest would). */
function activate(path, type) {
    if (type === "directory")
        return loadDir(path);
    if (type === "regular")
        return viewFile(path);
    if (type !== "symlink")
        return;
    return call(current.path, IFACE.files, "Stat", "sa{sv}", [path, { "follow-symlinks": variant("b", true) }])
        .then(([info]) => {
            const target = val(info, "type");
            if (target === "directory")
                return loadDir(path);
            if (target === "regular")
                return viewFile(path);
        })
        .catch((error) => showAlert(error, "Following " + path));
}

/* --- Viewing and editing a file ------------------------------------------------ */

let viewing = null;

function closeViewer() {
    viewing = null;
    $("viewer").hidden = true;
    $("viewer-content").value = "";
}

function viewFile(path) {
    clearAlerts();
    const guest = current;
    return call(guest.path, IFACE.files, "Stat", "sa{sv}", [path, { "follow-symlinks": variant("b", true) }])
        .then(([info]) => {
            const size = val(info, "size");
            viewing = { path, text: null };
            $("viewer").hidden = false;
            $("viewer-path").textContent = path;
            $("viewer-content").readOnly = true;
            $("viewer-save").hidden = true;
            $("viewer-edit").hidden = true;
            if (size > VIEW_LIMIT) {
                $("viewer-note").hidden = false;
                $("viewer-note").textContent = "This file is " + formatSize(size) +
                    ", too large to show here: download it instead.";
                $("viewer-content").hidden = true;
                return;
            }
            return call(guest.path, IFACE.files, "ReadFile", "sa{sv}", [path, {}]).then(([data]) => {
                const bytes = cockpit.base64_decode(data, Uint8Array);
                let text = null;
                if (!bytes.includes(0)) {
                    try {
                        text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
                    } catch (e) {
                        text = null;
                    }
                }
                if (!viewing || viewing.path !== path)
                    return;
                if (text === null) {
                    $("viewer-note").hidden = false;
                    $("viewer-note").textContent = "This is a binary file (" + formatSize(bytes.length) +
                        "): download it instead.";
                    $("viewer-content").hidden = true;
                } else {
                    viewing.text = text;
                    $("viewer-note").hidden = true;
                    $("viewer-content").hidden = false;
                    $("viewer-content").value = text;
                    $("viewer-edit").hidden = false;
                }
                $("viewer").dataset.path = path;
            });
        })
        .catch((error) => showAlert(error, "Reading " + path));
}

$("viewer-edit").addEventListener("click", () => {
    $("viewer-content").readOnly = false;
    $("viewer-content").focus();
    $("viewer-edit").hidden = true;
    $("viewer-save").hidden = false;
});

$("viewer-save").addEventListener("click", () => {
    if (!viewing)
        return;
    const path = viewing.path;
    const data = cockpit.base64_encode(new TextEncoder().encode($("viewer-content").value));
    clearAlerts();
    /* WriteFile replaces the file atomically, keeping its mode and owner. */
    call(current.path, IFACE.files, "WriteFile", "saya{sv}", [path, data, { create: variant("b", false) }])
        .then(() => {
            $("viewer-content").readOnly = true;
            $("viewer-save").hidden = true;
            $("viewer-edit").hidden = false;
            return loadDir(current.dir);
        })
        .catch((error) => showAlert(error, "Saving " + path));
});

$("viewer-close").addEventListener("click", closeViewer);
$("viewer-download").addEventListener("click", () => viewing && download(viewing.path));

/* --- Transfers through guestfsctl ------------------------------------------ */

function guestfsctl(args, options) {
    return cockpit.spawn(["guestfsctl", "--quiet"].concat(args),
                         { superuser: "try", err: "message", ...options });
}

function download(path) {
    clearAlerts();
    const name = path.substring(path.lastIndexOf("/") + 1);
    return busy(guestfsctl(["cat", current.id, path], { binary: true }))
        .then((data) => {
            const blob = new Blob([data], { type: "application/octet-stream" });
            const url = URL.createObjectURL(blob);
            const a = document.createElement("a");
            a.href = url;
            a.download = name;
            document.body.append(a);
            a.click();
            a.remove();
            setTimeout(() => URL.revokeObjectURL(url), 60000);
            document.body.dataset.downloaded = path;
        })
        .catch((error) => showAlert(error, "Downloading " + path));
}

$("upload-input").addEventListener("change", (event) => {
    const input = event.target;
    const file = input.files[0];
    if (!file || !current)
        return;
    const guest = current;
    const target = joinPath(guest.dir, file.name);
    clearAlerts();
    busy(file.arrayBuffer().then((buffer) => {
        const proc = guestfsctl(["write", guest.id, target], { binary: true });
        proc.input(new Uint8Array(buffer));
        return proc;
    }))
        .then(() => loadDir(guest.dir))
        .catch((error) => showAlert(error, "Uploading " + target))
        .finally(() => { input.value = "" });
});

/* --- Changes, each after a dialog -------------------------------------------- */

/* Resolves with the input's text (or true without input), or null. */
function ask(title, text, { value = null, okLabel = "OK", danger = false } = {}) {
    const dialog = $("dialog");
    $("dialog-title").textContent = title;
    $("dialog-text").textContent = text;
    const input = $("dialog-input");
    input.hidden = value === null;
    input.value = value === null ? "" : value;
    $("dialog-ok").textContent = okLabel;
    $("dialog-ok").className = "btn " + (danger ? "btn-danger" : "btn-primary");
    return new Promise((resolve) => {
        dialog.addEventListener("close", () => {
            if (dialog.returnValue !== "ok")
                resolve(null);
            else
                resolve(value === null ? true : input.value);
        }, { once: true });
        dialog.returnValue = "";
        dialog.showModal();
        if (value !== null) {
            input.focus();
            input.select();
        }
    });
}

function change(promise, what) {
    clearAlerts();
    return promise.then(() => loadDir(current.dir)).catch((error) => showAlert(error, what));
}

$("mkdir").addEventListener("click", () => {
    ask("New folder", "Name of the folder to create in " + current.dir + ":", { value: "", okLabel: "Create" })
        .then((name) => {
            if (!name)
                return;
            const path = joinPath(current.dir, name);
            return change(call(current.path, IFACE.files, "Mkdir", "sa{sv}", [path, {}]), "Creating " + path);
        });
});

function renameEntry(path, name) {
    ask("Rename", "New name for " + path + ":", { value: name, okLabel: "Rename" })
        .then((newName) => {
            if (!newName || newName === name)
                return;
            const to = newName.startsWith("/") ? newName : joinPath(parentOf(path), newName);
            return change(call(current.path, IFACE.files, "Rename", "ssa{sv}", [path, to, {}]),
                          "Renaming " + path);
        });
}

function chmodEntry(path, mode) {
    ask("Change mode", "Permission bits of " + path + " (octal):",
        { value: (mode & 0o7777).toString(8).padStart(4, "0"), okLabel: "Change" })
        .then((text) => {
            if (text === null)
                return;
            const bits = parseInt(text, 8);
            if (!/^[0-7]{1,4}$/.test(text.trim()) || isNaN(bits)) {
                showAlert({ message: "\"" + text + "\" is not an octal mode such as 0644" }, "Changing mode");
                return;
            }
            return change(call(current.path, IFACE.files, "Chmod", "sua{sv}", [path, bits, {}]),
                          "Changing the mode of " + path);
        });
}

function deleteEntry(path, type) {
    const what = type === "directory" ? "the folder " + path + " and everything in it" : path;
    ask("Delete", "Delete " + what + " from the guest's disk? This cannot be undone.",
        { okLabel: "Delete", danger: true })
        .then((ok) => {
            if (!ok)
                return;
            const options = type === "directory" ? { recursive: variant("b", true) } : {};
            if (viewing && viewing.path === path)
                closeViewer();
            return change(call(current.path, IFACE.files, "Remove", "sa{sv}", [path, options]),
                          "Deleting " + path);
        });
}

$("refresh").addEventListener("click", () => { clearAlerts(); loadDir(current.dir) });
$("back").addEventListener("click", () => { clearAlerts(); closeGuest() });

/* --- One guest: its operating system, filesystems and applications ------------ */

/* What the System tab shows, loaded when it is first opened. */
let system = null;
let applications = [];

function resetSystem() {
    system = null;
    applications = [];
    $("os-details").replaceChildren();
    $("os-icon").hidden = true;
    $("os-icon").removeAttribute("src");
    $("usage").querySelector("tbody").replaceChildren();
    $("apps").querySelector("tbody").replaceChildren();
    $("apps-count").textContent = "";
    $("apps-filter").value = "";
    delete $("system").dataset.loaded;
}

function showTab(name) {
    for (const tab of document.querySelectorAll(".tab"))
        tab.classList.toggle("active", tab.dataset.tab === name);
    $("system").hidden = name !== "system";
    $("files-tab").hidden = name !== "files";
    if (name !== "files")
        $("viewer").hidden = true;
    else if (viewing)
        $("viewer").hidden = false;
    if (name === "system" && system === null)
        loadSystem(false);
}

for (const tab of document.querySelectorAll(".tab"))
    tab.addEventListener("click", () => { clearAlerts(); showTab(tab.dataset.tab) });

$("reinspect").addEventListener("click", () => { clearAlerts(); loadSystem(true) });

function detailsList(os) {
    const items = [
        ["Operating system", osSummary([os])],
        ["Type", val(os, "type")],
        ["Distribution", val(os, "distro")],
        ["Product name", /^[0-9.]+$/.test(val(os, "product-name") || "") ? undefined : val(os, "product-name")],
        ["Version", val(os, "major-version") + "." + val(os, "minor-version")],
        ["Architecture", val(os, "arch")],
        ["Hostname", val(os, "hostname")],
        ["osinfo", val(os, "osinfo")],
        ["Packages", [val(os, "package-format"), val(os, "package-management")].filter((x) => x && x !== "unknown").join(", ")],
        ["Root", val(os, "root")],
    ];
    const nodes = [];
    for (const [label, value] of items) {
        if (value === undefined || value === "" || value === "unknown")
            continue;
        const dt = document.createElement("dt");
        dt.textContent = label;
        const dd = document.createElement("dd");
        dd.textContent = value;
        dd.dataset.key = label;
        nodes.push(dt, dd);
    }
    return nodes;
}

function mountPoints(systems) {
    /* device -> mount point, from the inspected OSes */
    const points = {};
    for (const os of systems) {
        const map = val(os, "mountpoints") || {};
        for (const point in map)
            points[map[point]] = point;
    }
    return points;
}

function usageRow(fs, points) {
    const row = document.createElement("tr");
    const device = val(fs, "device");
    const size = val(fs, "size");
    const used = val(fs, "used");
    row.dataset.device = device;
    cell(row, device, "device");
    cell(row, points[device] || "", "mountpoint");
    cell(row, formatSize(size), "size");
    cell(row, formatSize(used), "size");
    cell(row, formatSize(val(fs, "available")), "size");
    const percent = size > 0 ? Math.round(100 * used / size) : 0;
    const td = cell(row, "", "use");
    const bar = document.createElement("div");
    bar.className = "bar" + (percent >= 90 ? " high" : "");
    bar.title = percent + "% used";
    bar.dataset.percent = String(percent);
    const fill = document.createElement("div");
    fill.style.width = percent + "%";
    bar.append(fill);
    td.append(bar);
    return row;
}

function renderApplications() {
    const filter = $("apps-filter").value.trim().toLowerCase();
    const shown = applications.filter((app) => !filter ||
        String(val(app, "name")).toLowerCase().includes(filter) ||
        String(val(app, "summary") || "").toLowerCase().includes(filter));
    const rows = shown.map((app) => {
        const row = document.createElement("tr");
        row.dataset.name = val(app, "name");
        cell(row, val(app, "display-name") || val(app, "name"), "name");
        const epoch = val(app, "epoch");
        const release = val(app, "release");
        cell(row, (epoch ? epoch + ":" : "") + (val(app, "version") || "") + (release ? "-" + release : ""), "version");
        cell(row, val(app, "arch") || "", "arch");
        cell(row, val(app, "summary") || "", "summary");
        return row;
    });
    $("apps").querySelector("tbody").replaceChildren(...rows);
    $("apps-count").textContent = shown.length === applications.length
        ? "(" + applications.length + ")" : "(" + shown.length + " of " + applications.length + ")";
}

$("apps-filter").addEventListener("input", renderApplications);

function loadSystem(refresh) {
    const guest = current;
    system = { loading: true };
    const options = refresh ? { refresh: variant("b", true) } : {};
    return call(guest.path, IFACE.inspector, "Inspect", "a{sv}", [options])
        .then(([systems]) => {
            if (current !== guest)
                return;
            system = { systems };
            renderAll();
            if (systems.length === 0) {
                const dt = document.createElement("dt");
                dt.textContent = "No operating system found on the disks.";
                $("os-details").replaceChildren(dt);
            } else {
                $("os-details").replaceChildren(...detailsList(systems[0]));
            }
            const root = systems.length ? val(systems[0], "root") : null;
            const steps = [
                call(guest.path, IFACE.inspector, "DiskUsage", "a{sv}", [{}]).then(([usage]) => {
                    const points = mountPoints(systems);
                    $("usage").querySelector("tbody").replaceChildren(...usage.map((fs) => usageRow(fs, points)));
                }),
            ];
            if (root) {
                steps.push(call(guest.path, IFACE.inspector, "ListApplications", "sa{sv}", [root, {}])
                        .then(([apps]) => {
                            applications = apps.sort((a, b) => String(val(a, "name")).localeCompare(String(val(b, "name"))));
                            renderApplications();
                        }));
                steps.push(call(guest.path, IFACE.inspector, "GetIcon", "sa{sv}", [root, {}])
                        .then(([png]) => {
                            if (png) {
                                $("os-icon").src = "data:image/png;base64," + png;
                                $("os-icon").hidden = false;
                                if (!icons[guest.path]) {
                                    icons[guest.path] = $("os-icon").src;
                                    renderAll();
                                }
                            }
                        }));
            }
            return Promise.all(steps);
        })
        .then(() => {
            if (current === guest)
                $("system").dataset.loaded = "true";
        })
        .catch((error) => {
            system = null;
            showAlert(error, "Inspecting " + guest.name);
        });
}

/* --- Long operations: the service's Job objects ------------------------------- */

const jobs = client.proxies(IFACE.job, ROOT_PATH);
const OPERATIONS = {
    "appliance-launch": "Starting the appliance",
    "files-download": "Downloading",
    "files-upload": "Uploading",
    "files-tar-out": "Archiving",
    "files-tar-in": "Unpacking",
    "volume-download": "Downloading the volume",
    "volume-upload": "Uploading the volume",
    "inspect-domains": "Inspecting",
};

function objectName(path) {
    const proxy = (domains[path] && domains[path].valid) ? domains[path] : volumes[path];
    return proxy && proxy.valid ? proxy.Name : path;
}

function jobRow(job) {
    const div = document.createElement("div");
    div.className = "job";
    div.dataset.path = job.path;
    div.dataset.operation = job.Operation;
    div.dataset.objects = (job.Objects || []).map(objectName).join(" ");
    const text = document.createElement("span");
    text.className = "job-text";
    let line = (OPERATIONS[job.Operation] || job.Operation) + ": " + div.dataset.objects;
    if (job.BytesDone > 0)
        line += " (" + formatSize(job.BytesDone) + (job.BytesTotal > 0 ? " of " + formatSize(job.BytesTotal) : "") + ")";
    text.textContent = line;
    const bar = document.createElement("progress");
    bar.max = 1;
    if (job.Progress >= 0)
        bar.value = job.Progress;  /* else indeterminate */
    div.append(text, bar);
    if (job.Cancelable) {
        div.append(actionButton("Cancel", "cancel", () => {
            client.call(job.path, IFACE.job, "Cancel", [{}], { type: "a{sv}" })
                    .catch((error) => showAlert(error, "Cancelling"));
        }));
    }
    return div;
}

function renderJobs() {
    const rows = Object.keys(jobs).filter((path) => jobs[path].valid).sort()
            .map((path) => jobRow(jobs[path]));
    $("jobs").replaceChildren(...rows);
}

for (const event of ["added", "changed", "removed"])
    jobs.addEventListener(event, renderJobs);
