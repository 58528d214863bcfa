/* header_only.c: the public header compiles alone (built as C and as C++). */
#include "transmute.h"

int main(void)
{
    struct tm_ctx_params p = { 0 };
    return p.threads;
}
