// tfm.hpp — a small header-only C++17 wrapper over the libtfm C API (include/tfm/tfm.h).
//
// Ownership: each class owns one handle (unique ownership, move-only, freed in the destructor).
// Errors: every failing call throws tfm::Error, which carries the tfm_status and the library's
// detailed message (tfm_last_error() read right after the call, on the same thread). Exceptions
// were chosen over an expected-style result because a failure in a chat or game loop is rare and
// is handled far from where it happens; the C API underneath never throws, never aborts.
// Lifetimes follow the C API: a Model must outlive its Sessions (declare it first), a TextStream
// borrows the tokenizer of its Model.
// Threads: a Model may be shared by threads (const member functions only); a Session, a Sampler and
// a TextStream belong to one thread at a time.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tfm/tfm.h>

namespace tfm {

class Error : public std::runtime_error {
public:
    Error(tfm_status status, const std::string &what)
        : std::runtime_error(what + ": " + tfm_status_string(status) + ": " + tfm_last_error()), status_(status) {}
    tfm_status status() const noexcept { return status_; }

private:
    tfm_status status_;
};

// Throws Error when `status` is not TFM_OK; `what` names the call.
inline void check(tfm_status status, const char *what) {
    if (status != TFM_OK) throw Error(status, what);
}

// The owning handle all wrappers share: a pointer and its C free function.
template <typename T, void (*Free)(T *)>
class Handle {
public:
    Handle() = default;
    explicit Handle(T *p) noexcept : p_(p) {}
    Handle(Handle &&other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
    Handle &operator=(Handle &&other) noexcept {
        if (this != &other) {
            Free(p_);
            p_ = std::exchange(other.p_, nullptr);
        }
        return *this;
    }
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;
    ~Handle() { Free(p_); }
    T *get() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    T *p_ = nullptr;
};

// A non-owning view of a tokenizer (a model's, or one a Tokenizer owns).
class TokenizerView {
public:
    explicit TokenizerView(const tfm_tokenizer *t) : t_(t) {
        if (!t_) throw Error(TFM_E_STATE, "the model carries no tokenizer");
    }
    const tfm_tokenizer *get() const noexcept { return t_; }

    std::vector<int32_t> tokenize(std::string_view text, uint32_t flags = TFM_TOKENIZE_MODEL_DEFAULTS) const {
        size_t n = 0;
        tfm_status st = tfm_tokenize(t_, text.data(), text.size(), flags, nullptr, 0, &n);
        if (st != TFM_OK && st != TFM_E_BUFFER_TOO_SMALL) check(st, "tfm_tokenize");
        std::vector<int32_t> ids(n);
        check(tfm_tokenize(t_, text.data(), text.size(), flags, ids.data(), ids.size(), &n), "tfm_tokenize");
        ids.resize(n);
        return ids;
    }

    std::string detokenize(const std::vector<int32_t> &ids) const {
        size_t n = 0;
        tfm_status st = tfm_detokenize(t_, ids.data(), ids.size(), nullptr, 0, &n);
        if (st != TFM_OK && st != TFM_E_BUFFER_TOO_SMALL) check(st, "tfm_detokenize");
        std::string text(n, '\0');
        check(tfm_detokenize(t_, ids.data(), ids.size(), text.data(), text.size(), &n), "tfm_detokenize");
        text.resize(n);
        return text;
    }

    int32_t eos() const noexcept { return tfm_tokenizer_eos(t_); }
    int32_t bos() const noexcept { return tfm_tokenizer_bos(t_); }
    int32_t vocab_size() const noexcept { return tfm_tokenizer_vocab_size(t_); }

private:
    const tfm_tokenizer *t_;
};

class Model {
public:
    static Model load(const std::string &path, const tfm_model_params *params = nullptr) {
        tfm_model *m = nullptr;
        check(tfm_model_load(path.c_str(), params, &m), ("loading " + path).c_str());
        return Model(m);
    }
    // `data` must stay valid and unchanged until the Model is destroyed (the library does not copy it).
    static Model load_from_memory(const void *data, size_t size, const tfm_model_params *params = nullptr) {
        tfm_model *m = nullptr;
        check(tfm_model_load_from_memory(data, size, params, &m), "tfm_model_load_from_memory");
        return Model(m);
    }

    tfm_model *get() const noexcept { return h_.get(); }
    TokenizerView tokenizer() const { return TokenizerView(tfm_model_tokenizer(h_.get())); }
    tfm_model_info info() const {
        tfm_model_info info{};
        info.struct_size = sizeof info;
        check(tfm_model_get_info(h_.get(), &info), "tfm_model_get_info");
        return info;
    }

private:
    explicit Model(tfm_model *m) : h_(m) {}
    Handle<tfm_model, tfm_model_free> h_;
};

class Session {
public:
    explicit Session(const Model &model, const tfm_session_params *params = nullptr) {
        tfm_session *s = nullptr;
        check(tfm_session_create(model.get(), params, &s), "tfm_session_create");
        h_ = Handle<tfm_session, tfm_session_free>(s);
    }
    Session(const Model &model, const tfm_session_params &params) : Session(model, &params) {}
    tfm_session *get() const noexcept { return h_.get(); }

    void eval(const std::vector<int32_t> &ids) { check(tfm_session_eval(h_.get(), ids.data(), ids.size()), "tfm_session_eval"); }
    // Like eval, but returns TFM_E_CONTEXT_FULL instead of throwing it, so a caller can make room.
    tfm_status try_eval(const std::vector<int32_t> &ids) {
        tfm_status st = tfm_session_eval(h_.get(), ids.data(), ids.size());
        if (st != TFM_OK && st != TFM_E_CONTEXT_FULL) check(st, "tfm_session_eval");
        return st;
    }
    // The last position's logits; valid until the next eval/rewind/reset.
    const float *last_logits() const {
        const float *l = tfm_session_last_logits(h_.get());
        if (!l) throw Error(TFM_E_STATE, "no logits: evaluate tokens first");
        return l;
    }
    int32_t n_past() const noexcept { return tfm_session_n_past(h_.get()); }
    int32_t n_ctx() const noexcept { return tfm_session_n_ctx(h_.get()); }
    void rewind(int32_t n_past) { check(tfm_session_rewind(h_.get(), n_past), "tfm_session_rewind"); }
    void reset() noexcept { tfm_session_reset(h_.get()); }

private:
    Handle<tfm_session, tfm_session_free> h_;
};

class Sampler {
public:
    explicit Sampler(const tfm_sampler_params &params) {
        tfm_sampler *s = nullptr;
        check(tfm_sampler_create(&params, &s), "tfm_sampler_create");
        h_ = Handle<tfm_sampler, tfm_sampler_free>(s);
    }
    int32_t sample(const float *logits, int32_t n_vocab, const std::vector<int32_t> &history) {
        int32_t id = -1;
        check(tfm_sampler_sample(h_.get(), logits, n_vocab, history.data(), history.size(), &id), "tfm_sampler_sample");
        return id;
    }

private:
    Handle<tfm_sampler, tfm_sampler_free> h_;
};

// Turns ids into text without splitting UTF-8 characters.
class TextStream {
public:
    explicit TextStream(TokenizerView tokenizer) {
        tfm_text_stream *s = nullptr;
        check(tfm_text_stream_create(tokenizer.get(), &s), "tfm_text_stream_create");
        h_ = Handle<tfm_text_stream, tfm_text_stream_free>(s);
    }
    std::string_view push(int32_t id) {
        const char *text = nullptr;
        size_t n = 0;
        check(tfm_text_stream_push(h_.get(), id, &text, &n), "tfm_text_stream_push");
        return {text, n};
    }
    std::string_view flush() {
        const char *text = nullptr;
        size_t n = 0;
        check(tfm_text_stream_flush(h_.get(), &text, &n), "tfm_text_stream_flush");
        return {text, n};
    }

private:
    Handle<tfm_text_stream, tfm_text_stream_free> h_;
};

}  // namespace tfm
