// chat.cpp — a chat-style loop over stdin with the tfm.hpp wrapper: each input line is a turn; the
// model's reply streams to stdout until it ends a line, emits end-of-sequence or reaches the limit.
// The session keeps the whole conversation; when the context is full it starts over from the
// current turn.
//
//     chat MODEL [--max-tokens N] [--temp T] [--seed S] [--ctx N]
//
// Errors are C++ exceptions (tfm::Error, with the library's status and message), caught in main.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <unistd.h>

#include "tfm.hpp"

namespace {

struct Options {
    std::string model;
    int max_tokens = 48;
    float temperature = 0.0f;  // greedy by default: the same input gives the same replies
    uint64_t seed = 1;
    int32_t n_ctx = 0;
};

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--max-tokens" && v) o.max_tokens = std::atoi(argv[++i]);
        else if (a == "--temp" && v) o.temperature = std::strtof(argv[++i], nullptr);
        else if (a == "--seed" && v) o.seed = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--ctx" && v) o.n_ctx = std::atoi(argv[++i]);
        else if (o.model.empty() && a[0] != '-') o.model = a;
        else throw std::invalid_argument("unknown or incomplete argument '" + a + "'");
    }
    if (o.model.empty()) throw std::invalid_argument("usage: chat MODEL [--max-tokens N] [--temp T] [--seed S] [--ctx N]");
    return o;
}

class Chat {
public:
    explicit Chat(const Options &o)
        : options_(o), model_(tfm::Model::load(o.model)), tokenizer_(model_.tokenizer()),
          session_(model_, session_params(o)), sampler_(sampler_params(o)), n_vocab_(tokenizer_.vocab_size()) {}

    // Adds the user's line to the conversation and streams the reply to `out`.
    void turn(const std::string &line, std::ostream &out) {
        // The first turn starts the sequence (BOS as the model wants); later ones continue it.
        bool first = session_.n_past() == 0;
        std::vector<int32_t> ids = tokenizer_.tokenize(first ? line : "\n" + line,
                                                       first ? TFM_TOKENIZE_MODEL_DEFAULTS : 0u);
        if (session_.try_eval(ids) == TFM_E_CONTEXT_FULL) {
            std::cerr << "[context full: starting over from this turn]\n";
            session_.reset();
            history_.clear();
            ids = tokenizer_.tokenize(line, TFM_TOKENIZE_MODEL_DEFAULTS);
            session_.eval(ids);  // throws if this turn alone does not fit
        }
        history_.insert(history_.end(), ids.begin(), ids.end());
        reply(out);
    }

private:
    static tfm_session_params session_params(const Options &o) {
        tfm_session_params p = tfm_session_params_default();
        p.n_ctx = o.n_ctx;
        return p;
    }
    static tfm_sampler_params sampler_params(const Options &o) {
        tfm_sampler_params p = tfm_sampler_params_default();
        p.temperature = o.temperature;
        p.seed = o.seed;
        return p;
    }

    void reply(std::ostream &out) {
        tfm::TextStream stream(tokenizer_);
        for (int i = 0; i < options_.max_tokens; i++) {
            int32_t id = sampler_.sample(session_.last_logits(), n_vocab_, history_);
            if (id == tokenizer_.eos()) break;
            std::string_view text = stream.push(id);
            // The reply ends where the model ends a line; the newline itself is not shown.
            size_t newline = text.find('\n');
            out << text.substr(0, newline) << std::flush;
            if (newline != std::string_view::npos) break;
            if (session_.n_past() >= session_.n_ctx()) break;  // no room to continue this reply
            history_.push_back(id);
            session_.eval({id});
        }
        out << stream.flush() << '\n' << std::flush;
    }

    Options options_;
    tfm::Model model_;  // declared before the session: destroyed after it
    tfm::TokenizerView tokenizer_;
    tfm::Session session_;
    tfm::Sampler sampler_;
    int32_t n_vocab_;
    std::vector<int32_t> history_;
};

}  // namespace

int main(int argc, char **argv) {
    try {
        Chat chat(parse(argc, argv));
        bool interactive = isatty(STDIN_FILENO);
        std::string line;
        while ((interactive && std::cerr << "> " << std::flush), std::getline(std::cin, line)) {
            if (line.empty()) continue;
            chat.turn(line, std::cout);
        }
        return 0;
    } catch (const tfm::Error &e) {
        std::cerr << "chat: " << e.what() << '\n';
        return 1;
    } catch (const std::exception &e) {
        std::cerr << "chat: " << e.what() << '\n';
        return 2;
    }
}
