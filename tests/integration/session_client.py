#!/usr/bin/python3
# The client side of test_session_user.py: it runs as the test's ordinary
# user (a session bus lets only its owner in, so the test process, root,
# cannot be the client), on the bus named by DBUS_SESSION_BUS_ADDRESS.
# One call per run; the outcome is one JSON object on stdout:
#   {"reply": [...]}                 the reply's values (bytes as lists)
#   {"error": NAME, "message": TEXT} a D-Bus error, or a failed connection
#
#   session_client.py call DEST PATH IFACE METHOD SIGNATURE JSON_ARGS
#   session_client.py objects        GetManagedObjects of the service
#
# Arguments are JSON values converted with SIGNATURE; JSON has no variant
# type, so a value of an a{sv} is given as [TYPE, VALUE], e.g.
# {"refresh": ["b", true]}.

import json
import sys

from gi.repository import Gio, GLib

BUS_NAME = 'org.libvirt.GuestFS'
# The first call of a new user may build the supermin appliance (a minute)
# and then boot it under TCG (up to a minute more).
CALL_TIMEOUT_MS = 900 * 1000


def to_json(value):
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(value):
    if isinstance(value, dict):  # a{sv}
        return {k: GLib.Variant(v[0], v[1]) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], int):  # ay
        return bytes(value)
    return value


def call(connection, dest, path, iface, method, signature, args):
    if signature:
        params = GLib.Variant(signature, tuple(from_json(a) for a in args))
    else:
        params = None
    reply = connection.call_sync(dest, path, iface, method, params, None,
                                 Gio.DBusCallFlags.NONE, CALL_TIMEOUT_MS, None)
    return to_json(reply.unpack())


def main(argv):
    try:
        connection = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        if argv[1] == 'objects':
            reply = call(connection, BUS_NAME, '/org/libvirt/GuestFS',
                         'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects', '', [])
        elif argv[1] == 'call':
            dest, path, iface, method, signature, args = argv[2:8]
            reply = call(connection, dest, path, iface, method, signature, json.loads(args))
        else:
            raise SystemExit('unknown command ' + argv[1])
    except GLib.Error as e:
        name = Gio.DBusError.get_remote_error(e)
        message = e.message
        if name and message.startswith('GDBus.Error:%s: ' % name):
            message = message[len('GDBus.Error:%s: ' % name):]
        print(json.dumps({'error': name or 'local:' + str(e.domain), 'message': message}))
        return 0
    print(json.dumps({'reply': reply}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
