#!/usr/bin/env python3
"""Writes the wire test vectors (*.vec) in this directory.

An independent implementation of the encoding in PROTOCOL.md: a small
msgpack writer and the message layouts, written without looking at the C
encoder's output. Each vector states the bytes and what they mean; the C
test (tests/test_msg.c) decodes the bytes, renders what it decoded in the
same `field = value` form, compares, and re-encodes canonical vectors byte
for byte. Run it after a deliberate protocol change and review the diff:

    python3 proto/vectors/gen.py

File format (one vector per file, UTF-8 text):
    # comment
    name: <vector name>
    plane: datagram | stream
    canonical: yes | no      (yes: re-encoding must give the same bytes)
    hex: <hex bytes>         (may repeat; the pieces are concatenated)
    <field> = <value>        (expected rendering; order does not matter)

Rendering: a datagram is decoded message by message; message i gives
`m<i>.rc = ok` or the error name, and when ok `m<i>.version`, `m<i>.type`
and its fields. A fatal error ends the datagram. A stream vector gives `rc`
and, when ok, `type`, `join`, `source`, `digest` (if present), `members`
and `member.<i>.<field>`. When nothing failed fatally, `unknown_keys` and
`unknown_types` follow. Metadata fields appear only when they differ from
their default (`meta.label.<key>`, `meta.accel.<kind>`, `meta.arch`, ...).
Floats print as C's "%.9g"; addresses as "a.b.c.d:port" / "[v6]:port";
hashes as lowercase hex.
"""
import ipaddress
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- a minimal msgpack writer ---------------------------------------------


class F32(float):
    pass


class F64(float):
    pass


class Raw(bytes):
    """Bytes inserted as they are (hostile vectors)."""


def enc(o):
    if isinstance(o, Raw):
        return bytes(o)
    if o is None:
        return b'\xc0'
    if o is True:
        return b'\xc3'
    if o is False:
        return b'\xc2'
    if isinstance(o, F32):
        return b'\xca' + struct.pack('>f', o)
    if isinstance(o, F64):
        return b'\xcb' + struct.pack('>d', o)
    if isinstance(o, int):
        if o >= 0:
            if o < 0x80:
                return bytes([o])
            for tag, fmt, lim in ((0xcc, '>B', 1 << 8), (0xcd, '>H', 1 << 16),
                                  (0xce, '>I', 1 << 32), (0xcf, '>Q', 1 << 64)):
                if o < lim:
                    return bytes([tag]) + struct.pack(fmt, o)
            raise ValueError(o)
        if o >= -32:
            return struct.pack('>b', o)
        for tag, fmt, lim in ((0xd0, '>b', 1 << 7), (0xd1, '>h', 1 << 15),
                              (0xd2, '>i', 1 << 31), (0xd3, '>q', 1 << 63)):
            if o >= -lim:
                return bytes([tag]) + struct.pack(fmt, o)
        raise ValueError(o)
    if isinstance(o, str):
        b = o.encode()
        n = len(b)
        if n < 32:
            return bytes([0xa0 | n]) + b
        if n < 256:
            return b'\xd9' + bytes([n]) + b
        return b'\xda' + struct.pack('>H', n) + b
    if isinstance(o, bytes):
        n = len(o)
        if n < 256:
            return b'\xc4' + bytes([n]) + o
        return b'\xc5' + struct.pack('>H', n) + o
    if isinstance(o, list):
        n = len(o)
        h = bytes([0x90 | n]) if n < 16 else b'\xdc' + struct.pack('>H', n)
        return h + b''.join(enc(x) for x in o)
    if isinstance(o, dict):
        n = len(o)
        h = bytes([0x80 | n]) if n < 16 else b'\xde' + struct.pack('>H', n)
        return h + b''.join(enc(k) + enc(v) for k, v in o.items())
    raise TypeError(o)


# ---- message layouts --------------------------------------------------------

TYPES = {1: 'ping', 2: 'ack', 3: 'ping-req', 4: 'nack', 5: 'alive', 6: 'suspect',
         7: 'dead', 8: 'leave', 9: 'meta', 10: 'policy-announce', 16: 'push-pull',
         17: 'push-pull-reply'}
STATES = {0: 'alive', 1: 'suspect', 2: 'failed', 3: 'left'}


def addr_wire(text):
    host, port = text.rsplit(':', 1)
    ip = ipaddress.ip_address(host.strip('[]'))
    return ip.packed + struct.pack('>H', int(port))


def f32(x):
    return struct.unpack('>f', struct.pack('>f', x))[0]


def fmt_float(x):
    return '%.9g' % f32(x)


class Meta:
    """Metadata with the defaults of PROTOCOL.md; render() lists the
    non-default fields, wire() gives the canonical map."""

    def __init__(self, labels=None, arch='', os='', cpus=0, mem_mb=0, accel=None,
                 load_milli=0, mem_free_mb=0, power=0, battery_pct=255, rollout=None,
                 workloads=None):
        self.labels = labels or {}
        self.arch, self.os, self.cpus, self.mem_mb = arch, os, cpus, mem_mb
        self.accel = accel or {}
        self.load_milli, self.mem_free_mb = load_milli, mem_free_mb
        self.power, self.battery_pct = power, battery_pct
        self.rollout = rollout or []  # [(job_hash, version, done_stage, flags)]
        self.workloads = workloads or []  # [(job_hash, replica, state, restarts, version)]

    def wire(self):
        m = {}
        if self.labels:
            m[1] = {k: self.labels[k] for k in sorted(self.labels, key=lambda s: s.encode())}
        if self.arch:
            m[2] = self.arch
        if self.os:
            m[3] = self.os
        if self.cpus:
            m[4] = self.cpus
        if self.mem_mb:
            m[5] = self.mem_mb
        if self.accel:
            m[6] = {k: self.accel[k] for k in sorted(self.accel, key=lambda s: s.encode())}
        if self.load_milli:
            m[7] = self.load_milli
        if self.mem_free_mb:
            m[8] = self.mem_free_mb
        if self.power:
            m[9] = self.power
        if self.battery_pct != 255:
            m[10] = self.battery_pct
        if self.rollout:
            m[11] = [list(e) for e in self.rollout]
        if self.workloads:
            m[12] = [list(e) for e in self.workloads]
        return m

    def render(self, p):
        out = ['%smeta.label.%s = %s' % (p, k, v) for k, v in self.labels.items()]
        out += ['%smeta.accel.%s = %d' % (p, k, v) for k, v in self.accel.items()]
        for name in ('arch', 'os'):
            if getattr(self, name):
                out.append('%smeta.%s = %s' % (p, name, getattr(self, name)))
        for name, default in (('cpus', 0), ('mem_mb', 0), ('load_milli', 0),
                              ('mem_free_mb', 0), ('power', 0), ('battery_pct', 255)):
            if getattr(self, name) != default:
                out.append('%smeta.%s = %d' % (p, name, getattr(self, name)))
        out += ['%smeta.rollout.%d = %08x %d %d %d' % ((p, i) + tuple(e))
                for i, e in enumerate(self.rollout)]
        out += ['%smeta.workload.%d = %08x %d %d %d %d' % ((p, i) + tuple(e))
                for i, e in enumerate(self.workloads)]
        return out


def message(mtype, body, version=1):
    return [version, mtype, body]


def lines(p, mtype, fields, version=1):
    out = ['%src = ok' % p, '%sversion = %d' % (p, version), '%stype = %s' % (p, TYPES[mtype])]
    for k, v in fields:
        if isinstance(v, Meta):
            out += v.render(p)
        else:
            out.append('%s%s = %s' % (p, k, v))
    return out


def b(x):
    return 'true' if x else 'false'


def ping(seq, target, source):
    return (message(1, {1: seq, 2: target, 3: source}),
            1, [('seq', seq), ('target', target), ('source', source)])


def ack(seq, source, coord=None):
    body = {1: seq, 3: source}
    f = [('seq', seq), ('source', source)]
    if coord is not None:
        body[6] = [F32(x) for x in coord]
        f.append(('coord', ' '.join(fmt_float(x) for x in coord)))
    return message(2, body), 2, f


def ping_req(seq, target, source, addr, want_nack):
    body = {1: seq, 2: target, 3: source, 4: addr_wire(addr)}
    if want_nack:
        body[5] = True
    return (message(3, body), 3, [('seq', seq), ('target', target), ('source', source),
                                  ('target_addr', addr), ('want_nack', b(want_nack))])


def nack(seq, source):
    return message(4, {1: seq, 3: source}), 4, [('seq', seq), ('source', source)]


def alive(name, inc, addr, meta, meta_version, vmin, vmax):
    return (message(5, {1: name, 2: inc, 3: addr_wire(addr), 4: meta.wire(), 5: meta_version,
                        6: vmin, 7: vmax}),
            5, [('name', name), ('incarnation', inc), ('addr', addr), ('meta_version', meta_version),
                ('vmin', vmin), ('vmax', vmax), ('meta', meta)])


def accuse(mtype, name, inc, frm):
    return (message(mtype, {1: name, 2: inc, 8: frm}), mtype,
            [('name', name), ('incarnation', inc), ('from', frm)])


def leave(name, inc):
    return message(8, {1: name, 2: inc}), 8, [('name', name), ('incarnation', inc)]


def meta_msg(name, inc, meta, meta_version):
    return (message(9, {1: name, 2: inc, 4: meta.wire(), 5: meta_version}), 9,
            [('name', name), ('incarnation', inc), ('meta_version', meta_version), ('meta', meta)])


def announce(kind, name, version, writer, h):
    return (message(10, {1: kind, 2: name, 3: version, 4: writer, 5: h}), 10,
            [('kind', kind), ('name', name), ('version', version), ('writer', writer),
             ('hash', h.hex())])


# ---- writing ----------------------------------------------------------------

written = []


def write(name, plane, data, expect, canonical, comment):
    path = os.path.join(HERE, name + '.vec')
    hx = data.hex()
    with open(path, 'w') as f:
        for c in comment.strip().splitlines():
            f.write('# %s\n' % c.strip())
        f.write('name: %s\nplane: %s\ncanonical: %s\n' % (name, plane, 'yes' if canonical else 'no'))
        for i in range(0, len(hx), 96):
            f.write('hex: %s\n' % hx[i:i + 96])
        for line in expect:
            f.write(line + '\n')
    written.append(name)


def dgram(name, msgs, comment, canonical=True, unknown_keys=0, unknown_types=0, fatal=None):
    """msgs: list of (wire object | Raw, expected lines or an error name)."""
    data = b''
    exp = []
    for i, (obj, e) in enumerate(msgs):
        data += enc(obj)
        p = 'm%d.' % i
        if isinstance(e, str):
            exp.append('%src = %s' % (p, e))
        else:
            exp += [l.replace('\x00', p) for l in e]
    if fatal is None:
        exp += ['unknown_keys = %d' % unknown_keys, 'unknown_types = %d' % unknown_types]
    write(name, 'datagram', data, exp, canonical, comment)


def ok(m):
    obj, mtype, fields = m
    return obj, lines('\x00', mtype, fields)


def bad(obj, err):
    return obj, err


def hostile(name, obj, err, comment):
    dgram(name, [bad(obj, err)], comment, canonical=False, fatal=err)


def pushpull(ptype, join, source, members, digest=None, order=None):
    """members: list of dicts name, addr, inc, state, meta, meta_version, vmin, vmax."""
    body = {1: join, 2: source}
    if digest is not None:
        body[4] = digest
    body[3] = [member_wire(m) for m in members]
    if order:
        body = {k: body[k] for k in order}
    exp = ['rc = ok', 'type = %s' % TYPES[ptype], 'join = %s' % b(join), 'source = %s' % source,
           'members = %d' % len(members)]
    if digest is not None:
        exp.append('digest = %s' % digest.hex())
    for i, m in enumerate(members):
        p = 'member.%d.' % i
        exp += ['%sname = %s' % (p, m['name']), '%saddr = %s' % (p, m['addr']),
                '%sincarnation = %d' % (p, m['inc']), '%sstate = %s' % (p, STATES[m['state']]),
                '%smeta_version = %d' % (p, m['meta_version']), '%svmin = %d' % (p, m['vmin']),
                '%svmax = %d' % (p, m['vmax'])]
        if m['down_ms'] is not None and m['state'] >= 2:  # ignored for alive and suspect
            exp.append('%sdown_ms = %d' % (p, m['down_ms']))
        exp += m['meta'].render(p)
    return message(ptype, body), exp


def member_wire(m):
    w = {1: m['name'], 2: m['inc'], 3: addr_wire(m['addr']), 4: m['meta'].wire(),
         5: m['meta_version'], 6: m['vmin'], 7: m['vmax'], 9: m['state']}
    if m['down_ms'] is not None:
        w[10] = m['down_ms']
    return w


def stream(name, obj, exp, comment, canonical=True, unknown_keys=0, tail=b''):
    data = enc(obj) + tail
    if exp[0] == 'rc = ok':
        exp = exp + ['unknown_keys = %d' % unknown_keys, 'unknown_types = 0']
    write(name, 'stream', data, exp, canonical, comment)


def member(name, addr, inc=1, state=0, meta=None, meta_version=0, vmin=1, vmax=1, down_ms=None):
    return dict(name=name, addr=addr, inc=inc, state=state, meta=meta or Meta(),
                meta_version=meta_version, vmin=vmin, vmax=vmax, down_ms=down_ms)


def main():
    for f in os.listdir(HERE):
        if f.endswith('.vec'):
            os.remove(os.path.join(HERE, f))

    typical = Meta(labels={'zone': 'eu-west-1a', 'role': 'camera', 'tier': 'edge'},
                   arch='aarch64', os='linux', cpus=4, mem_mb=3792, accel={'npu': 1, 'gpu': 2},
                   load_milli=1250, mem_free_mb=2048, power=2, battery_pct=87)
    maximal = Meta(labels={('k' * 31 + chr(ord('a') + i)): chr(ord('A') + i) * 16 for i in range(16)},
                   arch='x' * 16, os='o' * 16, cpus=2**32 - 1, mem_mb=2**32 - 1,
                   accel={c * 16: 2**32 - 1 for c in 'wxyz'}, load_milli=2**32 - 1,
                   mem_free_mb=2**32 - 1, power=1, battery_pct=100)
    coord = [0.001, -0.002, 0.0, 1.5, -3.25, 1e-7, 42.0, -0.5, 1e-5, 0.25, -0.0001]
    h = bytes(range(32))

    # --- canonical datagram messages ---------------------------------------
    dgram('ping-min', [ok(ping(0, 'b', 'a'))], 'Smallest ping.')
    dgram('ping', [ok(ping(4242, 'node-b', 'node-a'))], 'A probe from node-a to node-b.')
    dgram('ping-max', [ok(ping(2**32 - 1, 't' * 64, 's' * 64))], 'Largest seq, 64-byte names.')
    dgram('ack', [ok(ack(7, 'node-b'))], 'Ack without a coordinate.')
    dgram('ack-coord', [ok(ack(2**32 - 1, 'node-b', coord))], 'Ack with a Vivaldi coordinate.')
    dgram('ping-req-v4', [ok(ping_req(9, 'node-c', 'node-a', '192.0.2.7:7946', False))],
          'Indirect probe request, IPv4 target, no nack wanted.')
    dgram('ping-req-v6', [ok(ping_req(10, 'node-c', 'node-a', '[2001:db8::7]:65535', True))],
          'Indirect probe request, IPv6 target, nack wanted.')
    dgram('nack', [ok(nack(10, 'node-m'))], 'Negative ack from the intermediary.')
    dgram('alive-min', [ok(alive('n', 0, '10.0.0.1:1', Meta(), 0, 1, 1))],
          'Alive with empty metadata.')
    dgram('alive', [ok(alive('cam-17', 3, '10.1.2.3:7946', typical, 12, 1, 1))],
          'Alive with typical metadata.')
    dgram('alive-max', [ok(alive('n' * 64, 2**64 - 1, '[fd00::1]:7946', maximal, 2**64 - 1, 1, 255))],
          'Alive at every limit: 16 labels holding exactly 768 bytes of text.')
    dgram('suspect', [ok(accuse(6, 'node-c', 5, 'node-a'))], 'node-a suspects node-c.')
    dgram('dead', [ok(accuse(7, 'node-c', 5, 'node-a'))], 'node-a declares node-c failed.')
    dgram('leave', [ok(leave('node-d', 9))], 'node-d leaves.')
    dgram('meta', [ok(meta_msg('cam-17', 3, typical, 13))], 'Metadata update.')
    rolling = Meta(arch='arm64', cpus=4, rollout=[(0x9e3779b9, 0x0001_8f2a_1c3b_0004, 2, 1),
                                                  (0x01020304, 7, 0, 6)])
    dgram('meta-rollout', [ok(meta_msg('cam-17', 3, rolling, 14))],
          'Metadata with two staged-rollout reports (key 11); older decoders skip it.')
    running = Meta(arch='x86_64', cpus=8,
                   workloads=[(0x0badcafe, 0, 3, 0, 0x0001_8f2a_1c3b_0004),
                              (0x0badcafe, 2, 5, 17, 0x0001_8f2a_1c3b_0004),
                              (0x9e3779b9, 1, 2, 1, 7)])
    dgram('meta-workloads', [ok(meta_msg('cam-17', 3, running, 15))],
          'Metadata with three workload reports (key 12); older decoders skip it.')
    dgram('policy-announce', [ok(announce('job', 'vision/detector', 0x0001_8f2a_1c3b_0004,
                                          'op-laptop', h))], 'Policy announcement.')
    dgram('datagram-piggyback', [ok(ping(1, 'node-b', 'node-a')),
                                 ok(accuse(6, 'node-c', 5, 'node-a')),
                                 ok(alive('node-e', 1, '10.0.0.5:7946', Meta(arch='x86_64'), 1, 1, 1)),
                                 ok(leave('node-d', 9))],
          'A probe followed by three piggybacked gossip messages.')

    # --- accepted, not canonical -------------------------------------------
    obj, e = ok(ping(1, 'b', 'a'))
    obj[2][40] = 'from a newer agent'
    obj[2][63] = {1: [1, 2, {3: None}], 'x': b'\x00'}
    dgram('unknown-keys', [(obj, e)], 'Unknown body keys are skipped and counted.',
          canonical=False, unknown_keys=2)
    obj, e = ok(alive('n', 1, '10.0.0.1:7946', Meta(cpus=2), 0, 1, 1))
    obj[2][4][200] = 'future meta field'
    dgram('unknown-meta-key', [(obj, e)], 'Unknown metadata keys are skipped and counted too.',
          canonical=False, unknown_keys=1)
    dgram('unknown-type', [bad(message(15, {1: 'whatever', 2: [1, 2, 3]}), 'CN_EUNKNOWN'),
                           ok(ping(2, 'b', 'a'))],
          'Type 15 is unknown: skipped as a whole, counted, the next message decodes.',
          canonical=False, unknown_types=1)
    dgram('stream-type-in-datagram', [bad(message(16, {}), 'CN_EUNKNOWN'), ok(nack(1, 'a'))],
          'A stream-plane type is not a datagram message: skipped like an unknown type.',
          canonical=False, unknown_types=1)
    dgram('old-version', [bad(message(2, {1: 1, 3: 'a'}, version=0), 'CN_EVERSION'),
                          ok(ack(1, 'a'))],
          'Version 0 is below the minimum: skipped, then the next message decodes.',
          canonical=False)
    dgram('new-version', [bad(message(1, {1: 1}, version=3), 'CN_EVERSION'), ok(ack(1, 'a'))],
          'Version 3 is above what this build speaks: skipped.', canonical=False)
    obj, e = ok(ping(5, 'b', 'a'))
    obj[2] = {3: 'a', 1: 5, 2: 'b'}
    dgram('keys-any-order', [(obj, e)], 'Keys may come in any order.', canonical=False)
    obj, e = ok(ack(1, 'a', coord))
    obj[2][6] = [F64(f32(x)) for x in coord]
    dgram('coord-float64', [(obj, e)], 'Coordinates sent as float64 are accepted.',
          canonical=False)
    obj, e = ok(ping(1, 'b', 'a'))
    obj.append('trailer')
    dgram('extra-array-element', [(obj, e)],
          'Elements after the body (a newer sender\'s) are skipped and counted.',
          canonical=False, unknown_keys=1)
    obj, e = ok(ping(1, 'b', 'a'))
    obj[2][1] = Raw(b'\xcf' + (1).to_bytes(8, 'big'))
    dgram('wide-integer', [(obj, e)], 'Integers in a wider form than needed are accepted.',
          canonical=False)

    # --- hostile -------------------------------------------------------------
    hostile('hostile-huge-map', Raw(b'\xdf\xbf\xff\xff\x28'), 'CN_ETYPE',
            'A map declaring 3.2 billion entries in five bytes, where a message array belongs.')
    hostile('hostile-huge-array', Raw(b'\xdd\x7f\xff\xff\xff\x01'), 'CN_ELIMIT',
            'A message array declaring 2 billion elements.')
    hostile('hostile-huge-unknown', [1, 1, {50: Raw(b'\xdd\x7f\xff\xff\xff\x01')}], 'CN_ETRUNC',
            'An unknown key whose value declares 2 billion elements: skipping fails at once.')
    hostile('hostile-huge-body', [1, 1, Raw(b'\xdf\xbf\xff\xff\x28')], 'CN_ELIMIT',
            'A body map above CN_MSG_FIELDS_MAX keys.')
    hostile('hostile-huge-str', [1, 1, {2: Raw(b'\xdb\xff\xff\xff\xf0abc')}], 'CN_ETRUNC',
            'A string declaring 4 GiB.')
    hostile('hostile-truncated', Raw(enc(ping(1, 'node-b', 'node-a')[0])[:-3]), 'CN_ETRUNC',
            'A ping cut three bytes short.')
    hostile('hostile-reserved-byte', Raw(b'\xc1'), 'CN_ETYPE', '0xc1 is never valid msgpack.')
    hostile('hostile-short-array', [1, 1], 'CN_ETYPE', 'A message needs three elements.')
    hostile('hostile-body-not-map', [1, 1, [1, 2]], 'CN_ETYPE', 'The body must be a map.')
    hostile('hostile-string-key', [1, 1, {'seq': 1}], 'CN_ETYPE', 'Body keys are integers.')
    hostile('hostile-negative-key', [1, 1, {-1: 1}], 'CN_ETYPE', 'Body keys are unsigned.')
    hostile('hostile-duplicate-key', [1, 4, Raw(b'\x83\x01\x01\x03\xa1a\x01\x02')], 'CN_EINVAL',
            'A key that appears twice.')
    hostile('hostile-65-keys', [1, 1, Raw(b'\xde\x00\x41' + b''.join(enc(100 + i) + b'\xc0'
                                                                     for i in range(65)))],
            'CN_ELIMIT', 'One key over CN_MSG_FIELDS_MAX.')
    deep = Raw(b'\x91' * 17 + b'\xc0')
    hostile('hostile-depth', [1, 1, {1: 1, 2: 'b', 3: 'a', 50: deep}], 'CN_EDEPTH',
            'An unknown value nested 17 deep.')
    hostile('hostile-missing-source', [1, 1, {1: 1, 2: 'b'}], 'CN_EMISSING',
            'A ping without its source.')
    hostile('hostile-missing-meta', [1, 5, {1: 'n', 2: 1, 3: addr_wire('10.0.0.1:1'), 5: 0,
                                            6: 1, 7: 1}], 'CN_EMISSING', 'An alive without metadata.')
    hostile('hostile-name-too-long', [1, 1, {1: 1, 2: 'x' * 65, 3: 'a'}], 'CN_ELIMIT',
            'A 65-byte node name.')
    hostile('hostile-name-empty', [1, 1, {1: 1, 2: '', 3: 'a'}], 'CN_EINVAL', 'An empty name.')
    hostile('hostile-name-control', [1, 1, {1: 1, 2: 'a\nb', 3: 'a'}], 'CN_EINVAL',
            'A name holding a newline.')
    hostile('hostile-name-nul', [1, 1, {1: 1, 2: 'a\x00b', 3: 'a'}], 'CN_EINVAL',
            'A name holding a NUL byte.')
    hostile('hostile-name-binary', [1, 1, {1: 1, 2: b'b', 3: 'a'}], 'CN_ETYPE',
            'A name sent as bin instead of str.')
    hostile('hostile-seq-range', [1, 1, {1: 2**32, 2: 'b', 3: 'a'}], 'CN_ERANGE',
            'seq above 32 bits.')
    hostile('hostile-negative-incarnation', [1, 8, {1: 'n', 2: -1}], 'CN_ERANGE',
            'A negative incarnation.')

    def alive_with(meta_wire, over=None):
        body = {1: 'n', 2: 1, 3: addr_wire('10.0.0.1:7946'), 4: meta_wire, 5: 1, 6: 1, 7: 1}
        body.update(over or {})
        return [1, 5, body]
    hostile('hostile-labels-unsorted', alive_with({1: {'b': '1', 'a': '2'}}), 'CN_EINVAL',
            'Labels must be sorted by key.')
    hostile('hostile-labels-duplicate', alive_with({1: Raw(b'\x82\xa1a\xa11\xa1a\xa12')}),
            'CN_EINVAL', 'A label key twice.')
    hostile('hostile-label-empty-key', alive_with({1: {'': 'v'}}), 'CN_EINVAL',
            'An empty label key.')
    hostile('hostile-label-key-long', alive_with({1: {'k' * 33: 'v'}}), 'CN_ELIMIT',
            'A 33-byte label key.')
    hostile('hostile-label-value-long', alive_with({1: {'k': 'v' * 65}}), 'CN_ELIMIT',
            'A 65-byte label value.')
    hostile('hostile-label-value-control', alive_with({1: {'k': 'v\x7f\x1f'}}), 'CN_EINVAL',
            'A label value with a control byte.')
    hostile('hostile-17-labels', alive_with({1: {'k%02d' % i: 'v' for i in range(17)}}),
            'CN_ELIMIT', 'One label over CN_LABELS_MAX.')
    hostile('hostile-label-text', alive_with({1: {'k' * 30 + '%02d' % i: 'v' * 64
                                                   for i in range(9)}}), 'CN_ELIMIT',
            'Labels whose text exceeds CN_LABELS_TEXT_MAX (768 bytes).')
    hostile('hostile-accel-unsorted', alive_with({6: {'tpu': 1, 'gpu': 1}}), 'CN_EINVAL',
            'Accelerator kinds must be sorted.')
    hostile('hostile-accel-zero', alive_with({6: {'gpu': 0}}), 'CN_ERANGE',
            'An accelerator count of zero.')
    hostile('hostile-5-accel', alive_with({6: {k: 1 for k in 'abcde'}}), 'CN_ELIMIT',
            'One accelerator kind over CN_ACCEL_MAX.')
    hostile('hostile-battery', alive_with({10: 101}), 'CN_ERANGE', 'Battery above 100 percent.')
    hostile('hostile-arch-long', alive_with({2: 'a' * 17}), 'CN_ELIMIT', 'A 17-byte arch.')
    hostile('hostile-rollout-9', alive_with({11: [[1, 1, 0, 0]] * 9}), 'CN_ELIMIT',
            'Nine rollout reports, one over CN_ROLLOUT_REPORTS_MAX.')
    hostile('hostile-rollout-short', alive_with({11: [[1, 1, 0]]}), 'CN_EINVAL',
            'A rollout report of three elements instead of four.')
    hostile('hostile-rollout-stage', alive_with({11: [[1, 1, 65536, 0]]}), 'CN_ERANGE',
            'A done stage above CN_ROLLOUT_STAGE_MAX.')
    hostile('hostile-workloads-17', alive_with({12: [[1, r, 2, 0, 1] for r in range(17)]}),
            'CN_ELIMIT', 'Seventeen workload reports, one over CN_WORKLOAD_REPORTS_MAX.')
    hostile('hostile-workloads-short', alive_with({12: [[1, 0, 2, 0]]}), 'CN_EINVAL',
            'A workload report of four elements instead of five.')
    hostile('hostile-workloads-order', alive_with({12: [[2, 0, 2, 0, 1], [1, 0, 2, 0, 1]]}),
            'CN_EINVAL', 'Workload reports out of (job_hash, replica) order.')
    hostile('hostile-workloads-repeat', alive_with({12: [[1, 4, 2, 0, 1], [1, 4, 3, 0, 1]]}),
            'CN_EINVAL', 'Two reports for one replica.')
    hostile('hostile-workloads-replica', alive_with({12: [[1, 65536, 2, 0, 1]]}), 'CN_ERANGE',
            'A replica number above 65535.')
    hostile('hostile-meta-big', alive_with({31: 'x' * 1100}), 'CN_ELIMIT',
            'Metadata above CN_META_WIRE_MAX, padded with an unknown key.')
    hostile('hostile-vmin-above-vmax', alive_with({}, {6: 2, 7: 1}), 'CN_ERANGE',
            'vmin greater than vmax.')
    hostile('hostile-vmin-zero', alive_with({}, {6: 0}), 'CN_ERANGE', 'Version 0 is never valid.')
    hostile('hostile-addr-length', alive_with({}, {3: b'\x0a\x00\x00\x01\x1f'}), 'CN_EINVAL',
            'A 5-byte address.')
    hostile('hostile-addr-port-zero', alive_with({}, {3: b'\x0a\x00\x00\x01\x00\x00'}),
            'CN_EINVAL', 'Port zero.')
    hostile('hostile-addr-long', alive_with({}, {3: bytes(19)}), 'CN_ELIMIT',
            'A 19-byte address.')

    def ack_with(c):
        return [1, 2, {1: 1, 3: 'a', 6: c}]
    nan = Raw(b'\xca\x7f\xc0\x00\x00')
    inf = Raw(b'\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00')
    hostile('hostile-coord-nan', ack_with([F32(0)] * 8 + [nan, F32(0), F32(0)]), 'CN_ERANGE',
            'A NaN coordinate component.')
    hostile('hostile-coord-inf', ack_with([inf] + [F32(0)] * 10), 'CN_ERANGE',
            'An infinite coordinate component.')
    hostile('hostile-coord-huge', ack_with([F64(1e300)] + [F32(0)] * 10), 'CN_ERANGE',
            'A float64 too large for float32.')
    hostile('hostile-coord-short', ack_with([F32(0)] * 10), 'CN_EINVAL',
            'Ten components instead of eleven.')
    hostile('hostile-coord-long', ack_with([F32(0)] * 12), 'CN_ELIMIT',
            'Twelve components instead of eleven.')
    hostile('hostile-coord-height', ack_with([F32(0)] * 8 + [F32(-1), F32(0), F32(0)]),
            'CN_ERANGE', 'A negative height.')
    hostile('hostile-coord-string', ack_with([F32(0)] * 10 + ['1']), 'CN_ETYPE',
            'A string in a coordinate.')
    hostile('hostile-hash-short', [1, 10, {1: 'job', 2: 'x', 3: 1, 4: 'w', 5: bytes(31)}],
            'CN_EINVAL', 'A 31-byte policy hash.')
    hostile('hostile-hash-long', [1, 10, {1: 'job', 2: 'x', 3: 1, 4: 'w', 5: bytes(33)}],
            'CN_ELIMIT', 'A 33-byte policy hash.')
    hostile('hostile-policy-name-long', [1, 10, {1: 'job', 2: 'x' * 129, 3: 1, 4: 'w',
                                                5: bytes(32)}], 'CN_ELIMIT',
            'A 129-byte policy name.')
    hostile('hostile-want-nack-int', [1, 3, {1: 1, 2: 'b', 3: 'a', 4: addr_wire('10.0.0.1:1'),
                                            5: 1}], 'CN_ETYPE', 'want_nack must be a bool.')
    dgram('hostile-after-good', [ok(ping(1, 'b', 'a')), bad(Raw(b'\x93\x01\x05\x8f'), 'CN_ETRUNC')],
          'A good probe then a truncated gossip message: the first stands.', canonical=False,
          fatal='CN_ETRUNC')

    # --- stream --------------------------------------------------------------
    obj, exp = pushpull(16, True, 'node-new', [])
    stream('pushpull-join-empty', obj, exp, 'A join request with no members.')
    ms = [member('node-a', '10.0.0.1:7946', inc=4, meta=typical, meta_version=9),
          member('node-b', '[fd00::2]:7946', inc=2**40, state=1, vmin=1, vmax=3),
          member('node-c', '10.0.0.3:7946', state=2), member('node-d', '10.0.0.4:1', state=3)]
    obj, exp = pushpull(17, False, 'node-a', ms, digest=h)
    stream('pushpull-reply', obj, exp, 'A reply with four members in every state and a digest.')
    obj, exp = pushpull(16, False, 'node-a', ms[:2], digest=h, order=[3, 1, 4, 2])
    stream('pushpull-members-first', obj, exp,
           'Members before the other keys: accepted, the header is known before any callback.',
           canonical=False)
    obj, exp = pushpull(16, False, 'node-a', ms[:1])
    obj[2][99] = {'future': True}
    obj[2][3][0][30] = 'future member field'
    stream('pushpull-unknown-keys', obj, exp, 'Unknown keys in the header and a member.',
           canonical=False, unknown_keys=2)
    obj, _ = pushpull(16, False, 'node-a', ms[:1])
    stream('pushpull-trailing', obj, ['rc = CN_ETRAILING'], 'Bytes after the message.',
           canonical=False, tail=b'\x00')
    stream('pushpull-too-many', [1, 16, {1: False, 2: 'a', 3: Raw(b'\xdd\x00\x01\x00\x01')}],
           ['rc = CN_ELIMIT'], 'A member count above CN_PUSHPULL_MEMBERS_MAX.', canonical=False)
    stream('pushpull-count-lies', [1, 16, {1: False, 2: 'a', 3: Raw(b'\xdc\x03\xe8\x80')}],
           ['rc = CN_ETRUNC'], '1000 members declared, one byte present.', canonical=False)
    bad_state = member_wire(member('x', '10.0.0.1:1'))
    bad_state[9] = 4
    stream('pushpull-bad-state', [1, 17, {1: False, 2: 'a', 3: [bad_state]}],
           ['rc = CN_ERANGE'], 'Member state 4 does not exist.', canonical=False)
    no_state = member_wire(member('x', '10.0.0.1:1'))
    del no_state[9]
    stream('pushpull-member-missing-state', [1, 17, {1: False, 2: 'a', 3: [no_state]}],
           ['rc = CN_EMISSING'], 'A member without its state.', canonical=False)
    stream('pushpull-missing-members', [1, 16, {1: False, 2: 'a'}], ['rc = CN_EMISSING'],
           'No member array.', canonical=False)
    stream('pushpull-wrong-type', ping(1, 'b', 'a')[0], ['rc = CN_EUNKNOWN'],
           'A datagram message on the push-pull decoder.', canonical=False)
    stream('pushpull-old-version', [0, 16, {1: False, 2: 'a', 3: []}], ['rc = CN_EVERSION'],
           'Version 0.', canonical=False)
    # Key 10 down_ms: the age of a failed or left record.
    down = [member('node-c', '10.0.0.3:7946', inc=3, state=2, meta=typical, meta_version=2,
                   down_ms=90000),
            member('node-d', '10.0.0.4:7946', state=3, down_ms=2**32 - 1),
            member('node-e', '10.0.0.5:7946', state=2, down_ms=0),
            member('node-f', '10.0.0.6:7946', state=2)]
    obj, exp = pushpull(17, False, 'node-a', down)
    stream('pushpull-down-ms', obj, exp,
           'Failed and left members with the age of their state (key 10, written last);\n'
           'node-f comes from a sender without key 10. Older decoders skip key 10 as an\n'
           'unknown key.')
    up = [member('node-a', '10.0.0.1:7946', down_ms=5), member('node-b', '10.0.0.2:7946', state=1,
                                                                down_ms=6)]
    obj, exp = pushpull(17, False, 'node-a', up)
    stream('pushpull-down-ms-up', obj, exp,
           'Key 10 on an alive and a suspect member: accepted and dropped (it is written\n'
           'only for failed and left members).', canonical=False)
    bad_down = member_wire(member('x', '10.0.0.1:1', state=2))
    bad_down[10] = '90000'
    stream('pushpull-down-ms-type', [1, 17, {1: False, 2: 'a', 3: [bad_down]}],
           ['rc = CN_ETYPE'], 'down_ms must be an unsigned integer.', canonical=False)
    bad_down = member_wire(member('x', '10.0.0.1:1', state=3))
    bad_down[10] = 2**32
    stream('pushpull-down-ms-range', [1, 17, {1: False, 2: 'a', 3: [bad_down]}],
           ['rc = CN_ERANGE'], 'down_ms above 2^32-1 (senders clamp it).', canonical=False)
    print('wrote %d vectors' % len(written))


if __name__ == '__main__':
    main()
