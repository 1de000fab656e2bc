// The public header compiles as C++ with every warning, and its functions link.
#include <tfm/tfm.h>

#include <cstdio>

int main() {
    tfm_model_params params = tfm_model_params_default();
    if (params.struct_size != sizeof params) return 1;
    if (tfm_version_number() != TFM_VERSION_NUMBER) return 1;
    std::printf("libtfm %s\n", tfm_version_string());
    return 0;
}
