/* The public header compiles as strict C11; the run-time version equals the header's; the status
 * strings and params defaults behave as documented. */
#include <stdio.h>
#include <string.h>
#include <tfm/tfm.h>

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                       \
        }                                                                   \
    } while (0)

int main(void) {
    CHECK(tfm_version_number() == TFM_VERSION_NUMBER);
    CHECK(strcmp(tfm_version_string(), TFM_VERSION_STRING) == 0);
    CHECK(strcmp(tfm_status_string(TFM_E_CONTEXT_FULL), "context full") == 0);
    CHECK(strcmp(tfm_status_string((tfm_status)999), "unknown status") == 0);
    CHECK(strcmp(tfm_last_error(), "") == 0);

    tfm_session_params sp = tfm_session_params_default();
    CHECK(sp.struct_size == sizeof sp && sp.kv_dtype == TFM_DTYPE_F16);
    tfm_sampler_params smp = tfm_sampler_params_default();
    CHECK(smp.struct_size == sizeof smp && smp.top_p > 0);

    /* Freeing NULL is harmless for every object. */
    tfm_model_free(NULL);
    tfm_session_free(NULL);
    tfm_tensor_free(NULL);
    tfm_sampler_free(NULL);
    tfm_tokenizer_free(NULL);
    tfm_text_stream_free(NULL);

    /* A bad path names the problem and leaves *out NULL. */
    tfm_model *m = (tfm_model *)&sp;
    CHECK(tfm_model_load("/nonexistent/model.gguf", NULL, &m) == TFM_E_IO);
    CHECK(m == NULL);
    CHECK(strstr(tfm_last_error(), "/nonexistent/model.gguf") != NULL);

    /* An unknown backend is refused by name. */
    CHECK(tfm_backend_available("cpu") == 1);
    CHECK(tfm_backend_available("no-such-backend") == 0);
    CHECK(tfm_backend_count() >= 1 && strcmp(tfm_backend_name(0), "cpu") == 0);
    printf("header ok, libtfm %s\n", tfm_version_string());
    return 0;
}
