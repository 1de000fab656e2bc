"""The low-level layer: libtfm's C API through ctypes, one to one with include/tfm/tfm.h.

Every function of the header is declared here with its argtypes and restype, under its C name, on
the object returned by :func:`library`. Structs mirror the header's params/info structs field by
field. Nothing here frees anything by itself; the Pythonic layer (tfm.Model, tfm.Session, ...) owns
handles and frees them.

The library is looked up, in order:
  1. the path in the TFM_LIBRARY environment variable (an error if it cannot be loaded);
  2. libtfm.so.<major> or libtfm.so inside this package's folder (a wheel that bundles it);
  3. the system's loader path (ctypes.util.find_library("tfm"), then libtfm.so.<major>).
Loading checks that the library's major version equals the one these bindings were written for and
that it is at least as new (TFM_VERSION_NUMBER below).
"""
import ctypes as C
import ctypes.util
import os
import threading

# The header version these bindings mirror.
TFM_VERSION_MAJOR = 0
TFM_VERSION_MINOR = 1
TFM_VERSION_PATCH = 0
TFM_VERSION_NUMBER = TFM_VERSION_MAJOR * 10000 + TFM_VERSION_MINOR * 100 + TFM_VERSION_PATCH

# tfm_status
TFM_OK = 0
TFM_E_INVALID_ARGUMENT = 1
TFM_E_IO = 2
TFM_E_FORMAT = 3
TFM_E_UNSUPPORTED = 4
TFM_E_OOM = 5
TFM_E_CONTEXT_FULL = 6
TFM_E_BACKEND = 7
TFM_E_ABORTED = 8
TFM_E_STATE = 9
TFM_E_BUFFER_TOO_SMALL = 10
TFM_E_INTERNAL = 11

# tfm_log_level
TFM_LOG_ERROR, TFM_LOG_WARN, TFM_LOG_INFO, TFM_LOG_DEBUG = 0, 1, 2, 3

# tfm_dtype
TFM_DTYPE_F32 = 0
TFM_DTYPE_F16 = 1
TFM_DTYPE_BF16 = 2
TFM_DTYPE_I32 = 3
TFM_DTYPE_Q8_0 = 8
TFM_DTYPE_Q4_0 = 9
TFM_DTYPE_Q4_K = 10
TFM_DTYPE_Q6_K = 11
TFM_DTYPE_Q5_K = 12

# tfm_tokenize flags
TFM_TOKENIZE_ADD_BOS = 1
TFM_TOKENIZE_ADD_EOS = 2
TFM_TOKENIZE_PARSE_SPECIAL = 4
TFM_TOKENIZE_MODEL_DEFAULTS = 8

TFM_LOGITS_LAST = 0
TFM_LOGITS_ALL = 1

# Callback types (CFUNCTYPE: ctypes takes the GIL when C calls back into Python).
tfm_log_fn = C.CFUNCTYPE(None, C.c_int, C.c_char_p, C.c_void_p)
tfm_progress_fn = C.CFUNCTYPE(C.c_int, C.c_float, C.c_void_p)
tfm_abort_fn = C.CFUNCTYPE(C.c_int, C.c_void_p)
tfm_token_fn = C.CFUNCTYPE(C.c_int, C.c_int32, C.POINTER(C.c_char), C.c_size_t, C.c_void_p)


class tfm_model_params(C.Structure):
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("backend", C.c_char_p),
        ("n_threads", C.c_int32),
        ("progress", tfm_progress_fn),
        ("progress_user_data", C.c_void_p),
        ("memory_limit", C.c_size_t),
        ("device", C.c_int32),
    ]


class tfm_model_info(C.Structure):
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("architecture", C.c_char_p),
        ("format", C.c_char_p),
        ("backend", C.c_char_p),
        ("name", C.c_char_p),
        ("n_vocab", C.c_int32),
        ("n_ctx_train", C.c_int32),
        ("n_embd", C.c_int32),
        ("n_layer", C.c_int32),
        ("n_head", C.c_int32),
        ("n_head_kv", C.c_int32),
        ("head_dim", C.c_int32),
        ("n_ff", C.c_int32),
        ("rope_theta", C.c_float),
        ("rms_eps", C.c_float),
        ("weight_dtype", C.c_int),
        ("n_params", C.c_int64),
        ("weight_bytes", C.c_int64),
        ("tied_embeddings", C.c_int32),
    ]


class tfm_session_params(C.Structure):
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("n_ctx", C.c_int32),
        ("kv_dtype", C.c_int),
        ("logits_all", C.c_int32),
        ("abort", tfm_abort_fn),
        ("abort_user_data", C.c_void_p),
        ("n_batch", C.c_int32),
    ]


class tfm_sampler_params(C.Structure):
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("temperature", C.c_float),
        ("top_k", C.c_int32),
        ("top_p", C.c_float),
        ("min_p", C.c_float),
        ("repeat_penalty", C.c_float),
        ("repeat_last_n", C.c_int32),
        ("seed", C.c_uint64),
    ]


class tfm_generate_params(C.Structure):
    _fields_ = [
        ("struct_size", C.c_size_t),
        ("max_tokens", C.c_int32),
        ("stop_ids", C.POINTER(C.c_int32)),
        ("n_stop_ids", C.c_size_t),
        ("ignore_eos", C.c_int32),
        ("on_token", tfm_token_fn),
        ("user_data", C.c_void_p),
    ]


_P = C.c_void_p
_PP = C.POINTER(C.c_void_p)
_I32P = C.POINTER(C.c_int32)
_SIZEP = C.POINTER(C.c_size_t)

# name: (argtypes, restype), in the order of tfm.h
SIGNATURES = {
    "tfm_version_number": ([], C.c_int),
    "tfm_version_string": ([], C.c_char_p),
    "tfm_status_string": ([C.c_int], C.c_char_p),
    "tfm_last_error": ([], C.c_char_p),
    "tfm_set_log_callback": ([tfm_log_fn, _P, C.c_int], None),
    "tfm_backend_count": ([], C.c_int),
    "tfm_backend_name": ([C.c_int], C.c_char_p),
    "tfm_backend_available": ([C.c_char_p], C.c_int),
    "tfm_dtype_name": ([C.c_int], C.c_char_p),
    "tfm_tensor_create": ([C.c_int, C.c_int, C.POINTER(C.c_int64), _PP], C.c_int),
    "tfm_tensor_free": ([_P], None),
    "tfm_tensor_dtype": ([_P], C.c_int),
    "tfm_tensor_ndim": ([_P], C.c_int),
    "tfm_tensor_dim": ([_P, C.c_int], C.c_int64),
    "tfm_tensor_data": ([_P], _P),
    "tfm_tensor_nbytes": ([_P], C.c_size_t),
    "tfm_tokenizer_load": ([C.c_char_p, _PP], C.c_int),
    "tfm_tokenizer_free": ([_P], None),
    "tfm_tokenize": ([_P, C.c_char_p, C.c_size_t, C.c_uint32, _I32P, C.c_size_t, _SIZEP], C.c_int),
    "tfm_detokenize": ([_P, _I32P, C.c_size_t, C.c_char_p, C.c_size_t, _SIZEP], C.c_int),
    "tfm_tokenizer_vocab_size": ([_P], C.c_int32),
    "tfm_tokenizer_bos": ([_P], C.c_int32),
    "tfm_tokenizer_eos": ([_P], C.c_int32),
    "tfm_token_piece": ([_P, C.c_int32], C.c_char_p),
    "tfm_tokenizer_kind": ([_P], C.c_char_p),
    "tfm_text_stream_create": ([_P, _PP], C.c_int),
    "tfm_text_stream_free": ([_P], None),
    "tfm_text_stream_push": ([_P, C.c_int32, C.POINTER(C.POINTER(C.c_char)), _SIZEP], C.c_int),
    "tfm_text_stream_flush": ([_P, C.POINTER(C.POINTER(C.c_char)), _SIZEP], C.c_int),
    "tfm_model_params_init": ([C.POINTER(tfm_model_params), C.c_size_t], None),
    "tfm_model_load": ([C.c_char_p, C.POINTER(tfm_model_params), _PP], C.c_int),
    "tfm_model_load_from_memory": ([_P, C.c_size_t, C.POINTER(tfm_model_params), _PP], C.c_int),
    "tfm_model_free": ([_P], None),
    "tfm_model_get_info": ([_P, C.POINTER(tfm_model_info)], C.c_int),
    "tfm_model_tokenizer": ([_P], _P),
    "tfm_session_params_init": ([C.POINTER(tfm_session_params), C.c_size_t], None),
    "tfm_session_create": ([_P, C.POINTER(tfm_session_params), _PP], C.c_int),
    "tfm_session_free": ([_P], None),
    "tfm_session_eval": ([_P, _I32P, C.c_size_t], C.c_int),
    "tfm_session_n_past": ([_P], C.c_int32),
    "tfm_session_n_ctx": ([_P], C.c_int32),
    "tfm_session_rewind": ([_P, C.c_int32], C.c_int),
    "tfm_session_reset": ([_P], None),
    "tfm_session_logits": ([_P, C.c_int, _PP], C.c_int),
    "tfm_session_last_logits": ([_P], C.POINTER(C.c_float)),
    "tfm_sampler_params_init": ([C.POINTER(tfm_sampler_params), C.c_size_t], None),
    "tfm_sampler_create": ([C.POINTER(tfm_sampler_params), _PP], C.c_int),
    "tfm_sampler_free": ([_P], None),
    "tfm_sampler_sample": ([_P, C.POINTER(C.c_float), C.c_int32, _I32P, C.c_size_t, _I32P], C.c_int),
    "tfm_sampler_reset": ([_P, C.c_uint64], None),
    "tfm_generate_params_init": ([C.POINTER(tfm_generate_params), C.c_size_t], None),
    "tfm_session_generate": ([_P, _P, _I32P, C.c_size_t, C.POINTER(tfm_generate_params), _I32P, C.c_size_t,
                              _SIZEP], C.c_int),
}


class LibraryError(ImportError):
    """libtfm could not be found or loaded, or its version does not fit these bindings."""


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    for name in (f"libtfm.so.{TFM_VERSION_MAJOR}", "libtfm.so", "libtfm.dylib", "tfm.dll"):
        path = os.path.join(here, name)
        if os.path.exists(path):
            yield path
    found = ctypes.util.find_library("tfm")
    if found:
        yield found
    yield f"libtfm.so.{TFM_VERSION_MAJOR}"


def _open():
    explicit = os.environ.get("TFM_LIBRARY")
    if explicit:
        try:
            return C.CDLL(explicit), explicit
        except OSError as e:
            raise LibraryError(f"TFM_LIBRARY={explicit} cannot be loaded: {e}") from None
    tried = []
    for path in _candidates():
        try:
            return C.CDLL(path), path
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise LibraryError("libtfm was not found. Set TFM_LIBRARY to the path of libtfm.so, put it next to the "
                       "tfm package, or install it where the system loader finds it. Tried: " + "; ".join(tried))


def _declare(lib, path):
    for name, (argtypes, restype) in SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise LibraryError(f"{path} lacks {name}: it is older than the bindings need "
                               f"(libtfm {TFM_VERSION_MAJOR}.{TFM_VERSION_MINOR}.{TFM_VERSION_PATCH})") from None
        fn.argtypes = argtypes
        fn.restype = restype


def _check_version(lib, path):
    number = lib.tfm_version_number()
    version = lib.tfm_version_string().decode()
    if number // 10000 != TFM_VERSION_MAJOR or number < TFM_VERSION_NUMBER:
        raise LibraryError(f"{path} is libtfm {version}; these bindings need {TFM_VERSION_MAJOR}.x, at least "
                           f"{TFM_VERSION_MAJOR}.{TFM_VERSION_MINOR}.{TFM_VERSION_PATCH}")


_lib = None
_lib_path = None
_lock = threading.Lock()


def library():
    """The loaded, declared and version-checked libtfm (loaded on first use)."""
    global _lib, _lib_path
    if _lib is None:
        with _lock:
            if _lib is None:
                lib, path = _open()
                if not hasattr(lib, "tfm_version_number"):
                    raise LibraryError(f"{path} is not libtfm (no tfm_version_number)")
                lib.tfm_version_number.restype = C.c_int
                lib.tfm_version_string.restype = C.c_char_p
                _check_version(lib, path)
                _declare(lib, path)
                _lib_path = path
                _lib = lib
    return _lib


def library_path():
    """Where the loaded library came from (as given to the loader)."""
    library()
    return _lib_path


_PARAMS_STRUCTS = {
    "tfm_model_params_default": tfm_model_params,
    "tfm_session_params_default": tfm_session_params,
    "tfm_sampler_params_default": tfm_sampler_params,
    "tfm_generate_params_default": tfm_generate_params,
}


def defaults(function_name):
    """The params struct tfm.h's inline tfm_*_params_default() gives: tfm_*_params_init called
    with the size of the struct these bindings know."""
    struct = _PARAMS_STRUCTS[function_name]()
    init = getattr(library(), function_name.replace("_default", "_init"))
    init(C.byref(struct), C.sizeof(struct))
    return struct
