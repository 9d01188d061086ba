"""One model of an LXC container's config file.

Reads a config the way LXC 5 reads it (``confile.c``: ``key = value`` lines, blanks around
both trimmed, one pair of matching quotes around the value removed, anything not starting with
``lxc.`` ignored; the last value of a single-valued key wins; an empty value of a multi-valued
key clears what the lines before it gave) and edits it keeping every other line, comments and
order included. The checks of what the console lets people change live here too, so the
reading and the writing of a key cannot drift apart.

Every other module asks this one: the inventory (autostart keys, groups, rootfs), bind mounts
(``lxc.mount.entry``), hooks (``lxc.hook.*``), cgroup limits (``lxc.cgroup.*``), the Settings
form and the raw editor. ``tests/host/test_lxc_config_host.py`` compares its reading with what
``lxc-info -c KEY`` and ``lxc-autostart --list`` say on real configs.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from console.errors import InvalidInput

KEY_RE = re.compile(r"lxc(\.[a-z0-9_-]+)+")
MAX_CONFIG_BYTES = 256 * 1024
# Every character str.splitlines() splits on: none may enter a value (it would start a new line).
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# LXC trims only blanks and tabs around keys and values (lxc_char_left_gc / lxc_char_right_gc).
_BLANKS = " \t"


@dataclass(frozen=True)
class ConfigLine:
    """One line of the file: ``key`` is None for blank lines, comments and lines LXC ignores."""

    raw: str
    key: str | None = None
    value: str = ""


def parse_line(raw: str) -> ConfigLine:
    """One line as LXC's ``parse_line`` reads it."""
    line = raw.lstrip(_BLANKS)
    if not line.startswith("lxc.") or "=" not in line:
        return ConfigLine(raw)
    key, _, value = line.partition("=")
    value = value.strip(_BLANKS)
    if len(value) > 1 and value[0] in "'\"" and value[-1] == value[0]:
        value = value[1:-1]
    return ConfigLine(raw, key.rstrip(_BLANKS), value)


@dataclass(frozen=True)
class MountEntry:
    """One ``lxc.mount.entry`` (an fstab line: source, target, type, options)."""

    entry: str
    source: str
    target: str
    type: str
    options: str

    @property
    def bind(self) -> bool:
        return "bind" in self.options.split(",")

    @property
    def read_only(self) -> bool:
        return "ro" in self.options.split(",")


@dataclass
class ContainerConfig:
    """The keys of a container's config file the inventory keeps."""

    rootfs: str = ""
    store: str = ""
    autostart: bool = False
    start_delay: int = 0
    start_order: int = 0
    groups: list[str] = field(default_factory=list)


class LxcConfig:
    """A config file: its lines (kept as they are) and LXC's reading of them."""

    def __init__(self, text: str = "") -> None:
        body = text.replace("\r\n", "\n").removesuffix("\n")
        self.lines: list[ConfigLine] = [parse_line(raw) for raw in body.split("\n")] if body else []

    # --- reading ---------------------------------------------------------------------------------

    def text(self) -> str:
        return "".join(line.raw + "\n" for line in self.lines)

    def items(self) -> list[tuple[str, str]]:
        """Every ``(key, value)`` in file order."""
        return [(line.key, line.value) for line in self.lines if line.key is not None]

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self.items())

    def get(self, key: str, default: str | None = None) -> str | None:
        """The value LXC keeps for a single-valued key: the last line's."""
        values = [v for k, v in self.items() if k == key]
        return values[-1] if values else default

    def get_all(self, key: str) -> list[str]:
        """The values of a multi-valued key, in order; an empty value clears those before it."""
        out: list[str] = []
        for k, v in self.items():
            if k != key:
                continue
            if v:
                out.append(v)
            else:
                out = []
        return out

    @property
    def groups(self) -> list[str]:
        # set_config_group splits one line on blanks and tabs, not on commas: "a,b" is one group.
        return [g for value in self.get_all("lxc.group") for g in re.split(r"[ \t]+", value) if g]

    @property
    def rootfs(self) -> str:
        return self.get("lxc.rootfs.path") or ""

    @property
    def store(self) -> str:
        if not self.rootfs:
            return ""
        kind, sep, _rest = self.rootfs.partition(":")
        return kind if sep and kind.isascii() and kind.isalpha() else "dir"

    @property
    def rootfs_dir(self) -> str:
        """The rootfs path without its store prefix (``dir:/x`` -> ``/x``)."""
        kind, sep, rest = self.rootfs.partition(":")
        return rest if sep and kind.isascii() and kind.isalpha() else self.rootfs

    def _int(self, key: str, *, signed: bool) -> int | None:
        value = self.get(key)
        pattern = r"[+-]?[0-9]{1,9}" if signed else r"\+?[0-9]{1,9}"
        return int(value) if value is not None and re.fullmatch(pattern, value) else None

    @property
    def autostart(self) -> bool:
        return self._int("lxc.start.auto", signed=False) == 1

    @property
    def start_delay(self) -> int:
        return self._int("lxc.start.delay", signed=False) or 0

    @property
    def start_order(self) -> int:
        return self._int("lxc.start.order", signed=True) or 0

    @property
    def mount_entries(self) -> list[MountEntry]:
        out = []
        for value in self.get_all("lxc.mount.entry"):
            fields = value.split()
            if len(fields) >= 4:
                out.append(MountEntry(value, fields[0], fields[1], fields[2], fields[3]))
        return out

    @property
    def hooks(self) -> dict[str, list[str]]:
        """``lxc.hook.<type>`` -> the scripts LXC runs for it, in order."""
        types = dict.fromkeys(k[len("lxc.hook.") :] for k, _ in self.items() if k.startswith("lxc.hook."))
        return {t: paths for t in types if (paths := self.get_all(f"lxc.hook.{t}"))}

    @property
    def cgroup_limits(self) -> dict[str, str]:
        """``lxc.cgroup.<key>`` -> the value that applies (the last), device rules left out."""
        keys = dict.fromkeys(
            k.removeprefix("lxc.cgroup.")
            for k, _ in self.items()
            if k.startswith("lxc.cgroup.") and not k.startswith("lxc.cgroup.devices")
        )
        return {key: values[-1] for key in keys if (values := self.get_all(f"lxc.cgroup.{key}"))}

    def summary(self) -> ContainerConfig:
        return ContainerConfig(
            rootfs=self.rootfs,
            store=self.store,
            autostart=self.autostart,
            start_delay=self.start_delay,
            start_order=self.start_order,
            groups=self.groups,
        )

    # --- editing ---------------------------------------------------------------------------------

    def set(self, key: str, values: str | list[str]) -> LxcConfig:
        """Replace every ``key`` line by one line per value, put where the first one was (or at the
        end); other lines, comments included, stay as they are."""
        new = [_line(key, v) for v in ([values] if isinstance(values, str) else values)]
        out: list[ConfigLine] = []
        placed = False
        for line in self.lines:
            if line.key == key:
                if not placed:
                    out.extend(new)
                    placed = True
                continue
            out.append(line)
        if not placed:
            out.extend(new)
        self.lines = out
        return self

    def add(self, key: str, value: str) -> LxcConfig:
        """One more line of a multi-valued key, at the end."""
        self.lines.append(_line(key, value))
        return self

    def remove(self, key: str, value: str | None = None) -> bool:
        """Remove the ``key`` lines (only those whose value is ``value`` when given); True if any."""
        kept = [ln for ln in self.lines if not (ln.key == key and (value is None or ln.value == value))]
        removed = len(kept) != len(self.lines)
        self.lines = kept
        return removed


def _line(key: str, value: str) -> ConfigLine:
    check_key_value(key, value)
    return ConfigLine(f"{key} = {value}".rstrip(), key, value)


def check_key_value(key: str, value: str) -> None:
    """What any line the console writes must be: a real key and a one-line value (ValueError)."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise ValueError(f"invalid config key: {key!r}")
    if not isinstance(value, str) or any(c in value for c in _LINE_BREAKS) or "\x00" in value:
        raise ValueError(f"invalid value for {key}: it must be a single line")


def read(text: str) -> LxcConfig:
    return LxcConfig(text)


def parse_config(text: str) -> ContainerConfig:
    """The inventory's keys of a config file."""
    return LxcConfig(text).summary()


# --- what the Settings form may change -------------------------------------------------------------


def is_ascii_int(value: str, *, signed: bool = False, digits: int = 9) -> bool:
    """Whole numbers in ASCII digits only: ``str.isdigit()``, ``int()`` and ``\\d`` accept other
    scripts (``"٥٥"``), which LXC and the kernel do not read."""
    sign = "-?" if signed else ""
    return re.fullmatch(rf"{sign}[0-9]{{1,{digits}}}", value) is not None


def _int_range(lo: int, hi: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not is_ascii_int(value, signed=lo < 0) or not lo <= int(value) <= hi:
            raise InvalidInput(f"must be a whole number from {lo} to {hi} (digits 0-9)")
        return str(int(value))

    return check


def _bool01(value: str) -> str:
    if value not in ("0", "1"):
        raise InvalidInput("must be 0 or 1")
    return value


_GROUP_RE = re.compile(r"[A-Za-z0-9_.-]{1,63}")


def split_groups(value: str) -> list[str]:
    """The form's comma-separated groups, each checked."""
    groups = [g.strip() for g in value.split(",") if g.strip()]
    for g in groups:
        if not _GROUP_RE.fullmatch(g):
            raise InvalidInput(f"{g!r} is not a valid group name (letters, digits, '-', '_', '.')")
    return groups


def _groups(value: str) -> str:
    return ",".join(split_groups(value))


# A network interface name as the kernel takes it (dev_valid_name: at most 15 bytes, no '/',
# ':' or blank, not '.' or '..'), and not starting with '-' or '.' so no tool reads it as an option.
_INTERFACE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")


def _interface(value: str) -> str:
    if not _INTERFACE_RE.fullmatch(value):
        raise InvalidInput(
            "must be an interface name of 1-15 letters, digits, '-', '_', '.', "
            "starting with a letter, digit or '_'"
        )
    return value


_MAC_RE = re.compile(r"[0-9a-fA-Fx]{2}(:[0-9a-fA-Fx]{2}){5}")


def _mac(value: str) -> str:
    if not _MAC_RE.fullmatch(value):
        raise InvalidInput("must be a MAC address like 00:16:3e:xx:xx:xx (x: LXC picks a random digit)")
    return value.lower()


_SIGNALS = {
    "SIGPWR",
    "SIGTERM",
    "SIGINT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGHUP",
    "SIGQUIT",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
}


def _signal(value: str) -> str:
    if value.upper() in _SIGNALS:
        return value.upper()
    if is_ascii_int(value, digits=2) and 1 <= int(value) <= 64:
        return str(int(value))
    raise InvalidInput(f"must be a signal name ({', '.join(sorted(_SIGNALS))}) or a number from 1 to 64")


# LXC's own words (lxc.container.conf(5)): "unconfined", "generated", "unchanged", or the name of
# a loaded profile. Profile names here: letters, digits, '_', '-', '.', '+', not a path.
_PROFILE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}")


def _profile(value: str) -> str:
    if not _PROFILE_RE.fullmatch(value) or ".." in value:
        raise InvalidInput(
            "must be unconfined, generated, unchanged or the name of a loaded AppArmor profile "
            "(letters, digits, '_', '-', '.', '+')"
        )
    return value


@dataclass(frozen=True)
class EditableKey:
    key: str
    label: str
    check: Callable[[str], str]
    help: str = ""
    checkbox: bool = False


EDITABLE_KEYS: list[EditableKey] = [
    EditableKey(
        "lxc.start.auto",
        "Start at boot",
        _bool01,
        "started by lxc-autostart: at boot when it has no group or the group onboot "
        "(lxc-autostart --group onboot, by default), and from the host's Autostart page",
        checkbox=True,
    ),
    EditableKey(
        "lxc.start.delay",
        "Start delay, seconds",
        _int_range(0, 3600),
        "lxc-autostart waits this long after starting it before the next one; empty: 0",
    ),
    EditableKey(
        "lxc.start.order",
        "Start order",
        _int_range(-1000, 1000),
        "lower starts first (order 5 before order 10); empty: 0",
    ),
    EditableKey(
        "lxc.group",
        "Autostart groups",
        _groups,
        "comma-separated, e.g. web,db (one lxc.group line each); none: started by lxc-autostart "
        "without --group",
    ),
    EditableKey("lxc.net.0.link", "Bridge of the first interface", _interface, "e.g. lxcbr0"),
    EditableKey(
        "lxc.net.0.hwaddr",
        "MAC of the first interface",
        _mac,
        "empty: LXC makes a random one at each start",
    ),
    EditableKey("lxc.tty.max", "Number of ttys", _int_range(0, 64), "for lxc-console; empty: 0"),
    EditableKey(
        "lxc.signal.halt",
        "Halt signal",
        _signal,
        "what lxc-stop sends to ask init to shut down; empty: SIGPWR",
    ),
    EditableKey(
        "lxc.apparmor.profile",
        "AppArmor profile",
        _profile,
        "unconfined, generated, unchanged or a profile name; this host has no AppArmor: unconfined",
    ),
]
EDITABLE = {k.key: k for k in EDITABLE_KEYS}


def validate_key_value(key: str, value: str) -> str:
    """Validate one editable key's new value; return it normalised."""
    spec = EDITABLE.get(key)
    if spec is None:
        raise InvalidInput(f"{key!r} cannot be edited here (use the raw editor as an administrator)")
    if not isinstance(value, str) or any(c in value for c in _LINE_BREAKS) or "\x00" in value:
        raise InvalidInput(f"{key}: the value must be a single line", field=key)
    value = value.strip()
    try:
        return spec.check(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{key}: {exc.message}", field=key) from None


def saved_values(config: LxcConfig) -> dict[str, str]:
    """Each editable key's value in the file ('' when not set; groups comma-joined)."""
    return {
        spec.key: ",".join(config.groups) if spec.key == "lxc.group" else config.get(spec.key) or ""
        for spec in EDITABLE_KEYS
    }


def form_values(config: LxcConfig) -> dict[str, str]:
    """What the Settings form shows for each editable key: the saved value, and the Start at boot
    checkbox as "1" or "0"."""
    return {**saved_values(config), "lxc.start.auto": "1" if config.autostart else "0"}


class SettingsRefused(InvalidInput):
    """Several fields refused at once: ``errors`` maps each key to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()), field=next(iter(errors)))
        self.errors = errors


def settings_changes(config_text: str, submitted: dict[str, str]) -> dict[str, str | None]:
    """The keys a Settings form submission changes: key -> new value, or None to remove the key.

    A field left as shown changes nothing (even if its current value is one the form would not
    accept); an emptied field removes the key (LXC's default applies); every wrong field is
    reported at once (SettingsRefused).
    """
    config = LxcConfig(config_text)
    shown = form_values(config)
    changes: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for key, raw in submitted.items():
        if key not in EDITABLE:
            errors[key] = f"{key!r} cannot be edited here (use the raw editor as an administrator)"
            continue
        if raw == shown[key]:
            continue
        if isinstance(raw, str) and raw.strip() == "":
            if config.has(key):
                changes[key] = None
            continue
        try:
            normal = validate_key_value(key, raw)
        except InvalidInput as exc:
            errors[key] = exc.message
            continue
        try:
            current = validate_key_value(key, shown[key]) if shown[key] else ""
        except InvalidInput:
            current = shown[key]
        if normal != current:
            changes[key] = normal
    if errors:
        raise SettingsRefused(errors)
    return changes


def apply_setting(config: LxcConfig, key: str, value: str | None) -> None:
    """Write one Settings change into ``config`` (None removes the key)."""
    if value is None:
        config.remove(key)
    elif key == "lxc.group":
        # One line per group: LXC reads "web,db" on one line as a single group named "web,db".
        groups = value.split(",") if value else []
        if groups:
            config.set(key, groups)
        else:
            config.remove(key)
    else:
        config.set(key, value)


# --- the raw editor ---------------------------------------------------------------------------------


def validate_config_text(text: str) -> str:
    """A whole config file: every line blank, a comment, or ``lxc.key = value``; the values of the
    keys the Settings form knows must pass its checks too (LXC refuses to load a config whose
    ``lxc.signal.halt`` is ``٥٥``, and the container then disappears from every lxc-* tool)."""
    if not isinstance(text, str):
        raise InvalidInput("the configuration must be text")
    if "\x00" in text:
        raise InvalidInput("the configuration must not contain NUL characters")
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise InvalidInput(f"the configuration is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    text = text.replace("\r\n", "\n")
    if any(c in text for c in _LINE_BREAKS if c != "\n"):
        raise InvalidInput("the configuration must not contain line breaks other than newlines")
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise InvalidInput(f"line {number}: expected 'lxc.key = value', got {stripped[:60]!r}")
        if not KEY_RE.fullmatch(key):
            raise InvalidInput(f"line {number}: {key[:60]!r} is not an LXC configuration key")
        try:
            _check_known_value(key, parse_line(line).value)
        except InvalidInput as exc:
            raise InvalidInput(f"line {number}: {exc.message}") from None
    if not any(line.strip().startswith("lxc.rootfs.path") for line in lines):
        raise InvalidInput("the configuration must keep its lxc.rootfs.path line")
    return "\n".join(lines).rstrip("\n") + "\n"


def _check_known_value(key: str, value: str) -> None:
    """A value of a key the console's forms edit must pass the same check in the raw editor."""
    from containers.limits import LIMITS, validate_limit

    if not value:
        return
    if key in EDITABLE and key != "lxc.group":  # LXC splits groups on blanks; any name is its own
        validate_key_value(key, value)
    elif key.startswith("lxc.cgroup.") and key.removeprefix("lxc.cgroup.") in LIMITS:
        validate_limit(key.removeprefix("lxc.cgroup."), value, {})


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def unified_diff(old: str, new: str, name: str = "config") -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"{name} (current)", f"{name} (new)"
        )
    )
