"""The strict plain-data codec between the course grader and its sandbox.

Two directions, two rules:

- **sandbox -> grader** (untrusted): :func:`encode` / :func:`decode`. A message is
  ``MAGIC | u32 header length | JSON header | binary blob``. The header is a tree of JSON
  values in which every object is a one-key tag (``{"f": "0x1.8p+1"}`` for a float,
  ``{"a": {...}}`` for an array, ...); array and ``bytes`` payloads are slices of the blob.
  :func:`decode` builds nothing but ``None``, ``bool``, ``int``, ``float``, ``complex``,
  ``str``, ``bytes``, ``list``, ``tuple``, ``dict`` (``str`` keys), ndarrays of an
  allow-listed little-endian numeric/bool dtype, torch tensors rebuilt from such arrays,
  and whatever the caller's ``make_handle`` builds for an opaque handle. No pickle, no
  import, no attribute lookup on anything the sandbox chose; every size is capped.
- **grader -> sandbox** (trusted): :func:`dumps` / :func:`loads` are pickle, with
  sandbox objects travelling as persistent ids (:class:`HandleRef`) and tensors keeping
  ``requires_grad``, ``.grad`` and the ``Parameter`` type.

Frames on the socket are ``u64 length | payload`` (:func:`send_frame`, :func:`recv_frame`).
"""
from __future__ import annotations

import io
import json
import pickle
import select
import struct
import time

import numpy as np

MAGIC = b"CGC1"
MAX_FRAME_BYTES = 512 * 2**20      # one message from the sandbox
MAX_HEADER_BYTES = 32 * 2**20
MAX_NODES = 2_000_000              # values in one message
MAX_DEPTH = 64
MAX_STR = 16 * 2**20

#: dtypes that may cross from the sandbox (little-endian or byte-order-free only).
ALLOWED_DTYPES = frozenset(
    ["|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8",
     "<f2", "<f4", "<f8", "<c8", "<c16"])

_TORCH_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32",
                 "uint64", "float16", "bfloat16", "float32", "float64", "complex64",
                 "complex128")


class CodecError(ValueError):
    """A message that is not well-formed plain data (or too large)."""


class ChannelClosed(EOFError):
    """The other end of the channel is gone."""


class ChannelTimeout(TimeoutError):
    """No complete message before the deadline."""


# ---------------------------------------------------------------------------------------
# framing
# ---------------------------------------------------------------------------------------

def send_frame(sock, payload: bytes) -> None:
    sock.sendall(struct.pack("<Q", len(payload)) + payload)


def _recv_exact(sock, n, deadline):
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeout("no reply before the deadline")
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                raise ChannelTimeout("no reply before the deadline")
        chunk = sock.recv(min(n - got, 4 * 2**20))
        if not chunk:
            raise ChannelClosed("the channel was closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_frame(sock, deadline: float | None = None, max_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """One frame; ``deadline`` is a ``time.monotonic()`` value (``None``: wait forever)."""
    (size,) = struct.unpack("<Q", _recv_exact(sock, 8, deadline))
    if size > max_bytes:
        raise CodecError(f"message of {size} bytes exceeds the limit of {max_bytes}")
    return _recv_exact(sock, size, deadline)


# ---------------------------------------------------------------------------------------
# sandbox side: encode
# ---------------------------------------------------------------------------------------

def _torch():
    import sys
    return sys.modules.get("torch")


class _Encoder:
    def __init__(self, register, argrefs):
        self.register = register      # obj -> dict describing a handle
        self.argrefs = argrefs or ()  # objects to send as references to the caller's args
        self.blob = io.BytesIO()
        self.nodes = 0
        self.active = set()

    def _bytes(self, data):
        offset = self.blob.tell()
        self.blob.write(data)
        if self.blob.tell() > MAX_FRAME_BYTES:
            raise CodecError("the value is too large to send")
        return [offset, len(data)]

    def _array(self, array):
        array = np.ndarray.view(array, np.ndarray) if isinstance(array, np.ndarray) else array
        if array.dtype.kind not in "biufc" or array.dtype.hasobject:
            return None
        array = np.array(array, dtype=array.dtype.newbyteorder("<"), order="C", copy=True)
        return {"dtype": array.dtype.str, "shape": list(array.shape),
                "data": self._bytes(array.tobytes())}

    def node(self, obj, depth=0):
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise CodecError("the value is too large or too deeply nested to send")
        for i, ref in enumerate(self.argrefs):
            if obj is ref:
                return {"r": i}
        if obj is None or obj is True or obj is False:
            return obj
        if isinstance(obj, (bool, np.bool_)):
            return bool(obj)
        if isinstance(obj, int):
            return int.__int__(obj) if -2**63 <= obj < 2**63 else {"I": str(int.__int__(obj))}
        if isinstance(obj, float) and not isinstance(obj, np.floating):
            return {"f": float.hex(float.__float__(obj))}
        if isinstance(obj, complex):
            z = complex(obj)
            return {"c": [z.real.hex(), z.imag.hex()]}
        if isinstance(obj, str):
            return str.__str__(obj)
        if isinstance(obj, (bytes, bytearray)):
            return {"b": self._bytes(bytes(obj))}
        if isinstance(obj, np.generic) and not isinstance(obj, np.void):
            arr = self._array(np.asarray(obj))
            if arr is not None:
                return {"s": arr}
        if isinstance(obj, np.ndarray):
            arr = self._array(obj)
            if arr is not None:
                return {"a": arr}
        torch = _torch()
        if torch is not None and isinstance(obj, torch.Tensor) and obj.layout == torch.strided:
            return {"T": self._tensor(obj, torch, depth)}
        if isinstance(obj, (list, tuple, dict)):
            if id(obj) in self.active:
                raise CodecError("the value contains itself")
            self.active.add(id(obj))
            try:
                if isinstance(obj, dict):
                    items = list(dict.items(obj))
                    if all(isinstance(k, str) for k, _ in items):
                        return {"d": [[str.__str__(k), self.node(v, depth + 1)]
                                      for k, v in items]}
                elif isinstance(obj, tuple) and type(obj) is not tuple:
                    # a namedtuple (a cache): its items as data, the object itself as a
                    # handle, so that passing it back gives the student their own object
                    return {"nt": {"h": self.register(obj),
                                   "fields": _field_names(obj),
                                   "items": [self.node(v, depth + 1)
                                             for v in tuple.__iter__(obj)]}}
                elif isinstance(obj, tuple):
                    return {"t": [self.node(v, depth + 1) for v in tuple.__iter__(obj)]}
                else:
                    return [self.node(v, depth + 1) for v in list.__iter__(obj)]
            finally:
                self.active.discard(id(obj))
        return {"h": self.register(obj)}

    def _tensor(self, tensor, torch, depth):
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype not in _TORCH_DTYPES:
            raise CodecError(f"tensors of dtype {dtype} cannot be sent")
        with torch.no_grad():
            value = tensor.detach().cpu().resolve_conj().resolve_neg()
            if dtype == "bfloat16":
                value = value.float()
            array = value.contiguous().numpy()
        grad = tensor.grad if tensor.is_leaf else None
        return {"a": self._array(array), "dtype": dtype, "rg": bool(tensor.requires_grad),
                "param": isinstance(tensor, torch.nn.Parameter),
                "grad": None if grad is None else self._tensor(grad, torch, depth + 1)}


def _field_names(obj):
    try:
        fields = type(obj).__dict__.get("_fields", ())
    except Exception:  # noqa: BLE001  (a hostile class)
        return []
    if type(fields) is not tuple or len(fields) != tuple.__len__(obj):
        return []
    return [str.__str__(f)[:100] for f in fields if type(f) is str]


def encode(obj, register=None, argrefs=None) -> bytes:
    """Serialize ``obj`` as plain data; anything else goes through ``register(obj)``, which
    returns the JSON-able description of a handle (``{"id": 3, "kind": "function", ...}``).
    Objects in ``argrefs`` are sent as ``{"r": index}``."""
    def refuse(o):
        raise CodecError(f"{type(o).__name__} objects cannot be sent")

    enc = _Encoder(register or refuse, argrefs)
    header = json.dumps(enc.node(obj), separators=(",", ":"), allow_nan=False).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + enc.blob.getvalue()


# ---------------------------------------------------------------------------------------
# grader side: decode (strict)
# ---------------------------------------------------------------------------------------

def _reject_constant(name):
    raise CodecError(f"invalid number {name}")


class _Decoder:
    def __init__(self, blob, make_handle, argrefs):
        self.blob = blob
        self.make_handle = make_handle
        self.argrefs = argrefs or ()
        self.nodes = 0

    def _slice(self, spec):
        if (type(spec) is not list or len(spec) != 2
                or any(type(v) is not int or v < 0 for v in spec)
                or spec[0] + spec[1] > len(self.blob)):
            raise CodecError("bad data reference")
        return self.blob[spec[0]:spec[0] + spec[1]]

    def _array(self, spec):
        if type(spec) is not dict or set(spec) != {"dtype", "shape", "data"}:
            raise CodecError("bad array")
        if spec["dtype"] not in ALLOWED_DTYPES:
            raise CodecError(f"arrays of dtype {spec['dtype']!r} are not accepted")
        dtype = np.dtype(spec["dtype"])
        shape = spec["shape"]
        if type(shape) is not list or len(shape) > 32 or any(
                type(n) is not int or n < 0 for n in shape):
            raise CodecError("bad array shape")
        data = self._slice(spec["data"])
        if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(data) or \
                len(data) % dtype.itemsize:
            raise CodecError("array size does not match its shape")
        return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))

    def _float(self, text):
        if type(text) is not str or len(text) > 64:
            raise CodecError("bad float")
        try:
            return float.fromhex(text)
        except (ValueError, OverflowError):
            raise CodecError("bad float") from None

    def _tensor(self, spec):
        import torch
        if type(spec) is not dict or set(spec) != {"a", "dtype", "rg", "param", "grad"}:
            raise CodecError("bad tensor")
        if spec["dtype"] not in _TORCH_DTYPES or type(spec["rg"]) is not bool or \
                type(spec["param"]) is not bool:
            raise CodecError("bad tensor")
        dtype = getattr(torch, spec["dtype"])
        value = torch.from_numpy(self._array(spec["a"])).to(dtype)
        if spec["param"]:
            value = torch.nn.Parameter(value, requires_grad=spec["rg"])
        elif spec["rg"] and (value.is_floating_point() or value.is_complex()):
            value.requires_grad_(True)
        if spec["grad"] is not None:
            grad = self._tensor(spec["grad"])
            if grad.shape == value.shape and grad.dtype == value.dtype:
                value.grad = grad
        return value

    def node(self, n, depth=0):
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise CodecError("message too large or too deeply nested")
        kind = type(n)
        if n is None or kind is bool or kind is int:
            return n
        if kind is str:
            return n
        if kind is list:
            return [self.node(v, depth + 1) for v in n]
        if kind is not dict or len(n) != 1:
            raise CodecError("bad value")
        (tag, body), = n.items()
        if tag == "f":
            return self._float(body)
        if tag == "I":
            if type(body) is not str or len(body) > 10_000:
                raise CodecError("bad integer")
            return int(body)
        if tag == "c":
            if type(body) is not list or len(body) != 2:
                raise CodecError("bad complex")
            return complex(self._float(body[0]), self._float(body[1]))
        if tag == "b":
            return bytes(self._slice(body))
        if tag == "a":
            return self._array(body)
        if tag == "s":
            value = self._array(body)
            if value.shape != ():
                raise CodecError("bad scalar")
            return value[()]
        if tag == "T":
            return self._tensor(body)
        if tag == "t":
            if type(body) is not list:
                raise CodecError("bad tuple")
            return tuple(self.node(v, depth + 1) for v in body)
        if tag == "nt":
            if type(body) is not dict or set(body) != {"h", "fields", "items"} or \
                    type(body["items"]) is not list or type(body["fields"]) is not list:
                raise CodecError("bad tuple")
            handle = self.node({"h": body["h"]}, depth + 1)
            items = [self.node(v, depth + 1) for v in body["items"]]
            fields = body["fields"]
            if len(fields) != len(items) or any(
                    type(f) is not str or not f.isidentifier() or f.startswith("_")
                    for f in fields):
                fields = []
            return HandleTuple(items, handle, fields)
        if tag == "d":
            if type(body) is not list:
                raise CodecError("bad dict")
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                    raise CodecError("bad dict item")
                out[pair[0]] = self.node(pair[1], depth + 1)
            return out
        if tag == "r":
            if type(body) is not int or not 0 <= body < len(self.argrefs):
                raise CodecError("bad argument reference")
            return self.argrefs[body]
        if tag == "h":
            if type(body) is not dict or type(body.get("id")) is not int or any(
                    type(body.get(k, "")) is not str or len(body.get(k, "")) > 200
                    for k in ("kind", "name", "type", "module")):
                raise CodecError("bad handle")
            if self.make_handle is None:
                raise CodecError("unexpected handle")
            return self.make_handle(body)
        raise CodecError(f"unknown tag {tag!r}")


def decode(message: bytes, make_handle=None, argrefs=None):
    """Rebuild plain data from an untrusted message; raise :class:`CodecError` otherwise."""
    try:
        if type(message) is not bytes or message[:4] != MAGIC or len(message) < 8:
            raise CodecError("not a codec message")
        (size,) = struct.unpack("<I", message[4:8])
        if size > MAX_HEADER_BYTES or 8 + size > len(message):
            raise CodecError("bad header size")
        tree = json.loads(message[8:8 + size].decode("utf-8"),
                          parse_constant=_reject_constant)
        return _Decoder(memoryview(message)[8 + size:].tobytes(), make_handle,
                        argrefs).node(tree)
    except CodecError:
        raise
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError, OverflowError,
            MemoryError, struct.error) as error:
        raise CodecError(f"malformed message ({type(error).__name__})") from None


# ---------------------------------------------------------------------------------------
# student exceptions: the nearest trusted class
# ---------------------------------------------------------------------------------------

_TRUSTED_EXCEPTIONS = None


def _trusted_exceptions():
    """``{"module.qualname": class}`` of the exception classes a test cell may expect:
    Python's built-in exceptions and NumPy's (``numpy.exceptions``, ``LinAlgError``)."""
    global _TRUSTED_EXCEPTIONS
    if _TRUSTED_EXCEPTIONS is None:
        import builtins

        classes = [c for c in vars(builtins).values()
                   if isinstance(c, type) and issubclass(c, Exception)]
        classes += [c for c in vars(np.exceptions).values()
                    if isinstance(c, type) and issubclass(c, Exception)]
        classes.append(np.linalg.LinAlgError)
        _TRUSTED_EXCEPTIONS = {f"{c.__module__}.{c.__qualname__}": c for c in classes
                               if c is not Exception}
    return _TRUSTED_EXCEPTIONS


def trusted_exception_bases(mro_names) -> list:
    """The trusted exception classes among ``mro_names`` (the ``module.qualname`` of each
    class of a student exception's MRO, as the sandbox reported them), nearest first.

    The names are only compared with the allow-list's own keys: nothing is imported or
    looked up by a name the sandbox chose.
    """
    if type(mro_names) is not list:
        return []
    trusted = _trusted_exceptions()
    found = []
    for name in mro_names[:64]:
        cls = trusted.get(name) if type(name) is str else None
        if cls is not None and cls not in found:
            found.append(cls)
    return found


# ---------------------------------------------------------------------------------------
# grader -> sandbox: pickle with handles and faithful tensors
# ---------------------------------------------------------------------------------------

class HandleTuple(tuple):
    """A tuple subclass of the student's (a namedtuple cache) on the trusted side: its
    items as plain data, its fields readable by name, and passed back into the sandbox as
    the student's own object (a handle), so their code gets what it returned."""

    __course_handle_id__ = True

    def __new__(cls, items, handle, fields=()):
        self = super().__new__(cls, items)
        self._handle = handle
        self._fields = tuple(fields)
        return self

    @property
    def _handle_id(self):
        return object.__getattribute__(self._handle, "_handle_id")

    def __getattr__(self, name):
        fields = self.__dict__.get("_fields", ())
        if name in fields:
            return self[fields.index(name)]
        raise AttributeError(name)

    def __repr__(self):
        if self._fields:
            inner = ", ".join(f"{f}={v!r}" for f, v in zip(self._fields, self))
            return f"({inner})"
        return tuple.__repr__(self)


class HandleRef:
    """Marker for an object that lives in the sandbox (carried as a pickle persistent id)."""

    def __init__(self, handle_id: int):
        self.handle_id = int(handle_id)


def _rebuild_tensor(value, requires_grad, grad, parameter):
    import torch
    if parameter:
        value = torch.nn.Parameter(value, requires_grad=requires_grad)
    elif requires_grad:
        value.requires_grad_(True)
    if grad is not None:
        value.grad = grad
    return value


def _rebuild_generator(state, seed):
    import torch
    generator = torch.Generator()
    generator.manual_seed(seed)
    generator.set_state(state)
    return generator


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        handle = getattr(type(obj), "__course_handle_id__", None)
        if handle is not None:
            if isinstance(obj, HandleTuple):
                return ("h", obj._handle_id)
            return ("h", object.__getattribute__(obj, "_handle_id"))
        return None

    def reducer_override(self, obj):
        torch = _torch()
        if torch is None:
            return NotImplemented
        if isinstance(obj, torch.Generator):
            return _rebuild_generator, (obj.get_state(), obj.initial_seed())
        if isinstance(obj, torch.Tensor) and (
                obj.requires_grad or obj.grad is not None or obj.device.type != "cpu"
                or isinstance(obj, torch.nn.Parameter)):
            grad = obj.grad.detach().cpu().clone() if obj.is_leaf and obj.grad is not None \
                else None
            return _rebuild_tensor, (obj.detach().cpu().clone(), obj.requires_grad, grad,
                                     isinstance(obj, torch.nn.Parameter))
        return NotImplemented


def dumps(obj) -> bytes:
    out = io.BytesIO()
    _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return out.getvalue()


def loads(data: bytes, resolve_handle):
    """Unpickle a request from the grader; ``resolve_handle(id)`` gives sandbox objects."""
    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            return resolve_handle(pid[1])

    return _Unpickler(io.BytesIO(data)).load()
