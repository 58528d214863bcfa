// header_only.cpp: the public header compiles alone as C++.
#include "transmute.h"

int main()
{
    tm_ctx_params p = {};
    return p.threads;
}
