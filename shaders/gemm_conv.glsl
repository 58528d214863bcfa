// gemm_conv.glsl: convolution as an implicit GEMM, shared by conv2d.comp and
// convt2d.comp (which differ only in the input indexing and, for the direct
// form, the pixel and tap sets; see the prototypes below).
//
//   M = Cout (weight rows), N = output pixels, K = Cin * KH * KW
//
// A workgroup computes a BM x BN tile of the output; each invocation holds
// RM x RN accumulators, for output rows ty + i*WG_M and pixels tx + j*WG_N
// (strided, so neighbouring invocations touch neighbouring addresses). K is
// walked in steps of BK: the weight slab and the im2col slab of the input are
// staged in shared memory, where every value is reused RN (resp. RM) times.
// The host picks the tile shape and guarantees WG_N*WG_M % BN == 0, so each
// invocation loads a fixed output pixel and its (oy, ox) are computed once.

layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 2) const uint RM = 4;
layout(constant_id = 3) const uint RN = 4;
layout(constant_id = 4) const uint BK = 16;
layout(constant_id = 5) const int KH = 3;
layout(constant_id = 6) const int KW = 3;
layout(constant_id = 7) const int STRIDE = 1;
layout(constant_id = 8) const int PAD = 0;
layout(constant_id = 9) const int PAD_MODE = 0;   // 0 zero, 1 reflect (conv2d only)
layout(constant_id = 10) const int ACT = 0;
layout(constant_id = 11) const bool HAS_BIAS = false;
layout(constant_id = 12) const uint FORM = 0;  // 0 tiled, 1 direct, 2 direct by channel
layout(constant_id = 13) const int DIL = 1;    // dilation (conv2d only)

const uint WG_N = gl_WorkGroupSize.x;
const uint WG_M = gl_WorkGroupSize.y;
const uint NT = WG_N * WG_M;
const uint BM = WG_M * RM;
const uint BN = WG_N * RN;
const uint KK = uint(KH * KW);

TM_VALUE(0, readonly, In)
TM_PARAM(1, readonly, Weight, float)  // [M][K] row-major
// The direct form reads the same binding as [K][m_pad], four channels a load.
TM_PARAM(1, readonly, Weight4, vec4)
TM_PARAM(2, readonly, Bias, float)
TM_VALUE(3, writeonly, Out)
#define t_in TM_AT(In, 0)
#define t_w TM_P(Weight)
#define t_w4 TM_P(Weight4)
#define t_bias TM_P(Bias)
#define t_out TM_AT(Out, 3)

shared float As[BK * BM];
shared float Bs[BK * BN];

// Defined by the including shader: the offset of the input value that tap
// (ky, kx) of output (oy, ox) reads within its channel plane, always in
// bounds; inside is false where the tap reads padding (zero) instead.
uint input_offset(int ky, int kx, int oy, int ox, out bool inside);
#if TM_TRANSPOSED
// convt2d.comp, for its direct form: the pixels of this dispatch's stride
// phase, pixel n's output coordinates (possibly beyond the output, then not
// stored), and the phase's first tap; its taps then step by STRIDE.
uint direct_pixels();
ivec2 direct_pixel(uint n);
ivec2 direct_tap0();
#else
// conv2d.comp: input row or column i, reflected or clamped into [0, size);
// inside is false where it falls in zero padding.
int pad_index(int i, int size, out bool inside);
#endif

float load_input(uint ci, int ky, int kx, int oy, int ox)
{
    bool inside;
    uint off = input_offset(ky, kx, oy, ox, inside);
    float v = t_in[ci * uint(pc.h_in * pc.w_in) + off];
    return inside ? v : 0.0;
}

void load_a(uint m0, uint k0, uint M, uint K)
{
    for (uint e = gl_LocalInvocationIndex; e < BK * BM; e += NT) {
        uint kl = e % BK, ml = e / BK;  // consecutive invocations read along K
        uint m = m0 + ml, k = k0 + kl;
        As[kl * BM + ml] = (m < M && k < K) ? t_w[m * K + k] : 0.0;
    }
}

void load_b(uint k0, uint K, uint nl, bool n_ok, int oy, int ox)
{
    for (uint kl = gl_LocalInvocationIndex / BN; kl < BK; kl += NT / BN) {
        uint k = k0 + kl;
        float v = 0.0;
        if (n_ok && k < K) {
            uint ci = k / KK, r = k % KK;
            v = load_input(ci, int(r) / KW, int(r) % KW, oy, ox);
        }
        Bs[kl * BN + nl] = v;
    }
}

// The direct forms, for CPU implementations (lavapipe, SwiftShader): they
// run a subgroup as one SIMD vector and turn every load whose address differs
// between lanes into a per-lane loop, while a subgroup-uniform address is one
// scalar load. Here the weight address depends only on the workgroup and the
// loop counters (uniform) and only the input value is per lane; there is no
// shared memory and no barrier, and the CPU caches provide the reuse.
// Invocation (x) computes RM output channels of RN pixels. In both, taps are
// outside the input channel loop: a tap's input offsets (reflection,
// padding, the transposed conv's division) do not depend on the channel, so
// they are computed once and the channel loop only steps them by a plane.
#if TM_TRANSPOSED
// The transposed conv's direct form: workgroup z is a stride phase, and only
// the taps that hit an input pixel in that phase are visited.
void conv_direct()
{
    uint M = uint(pc.c_out), N = direct_pixels();
    uint hw = uint(pc.h_in * pc.w_in);
    uint m0 = gl_WorkGroupID.y * RM;
    uint nbase = gl_WorkGroupID.x * BN + gl_LocalInvocationID.x;

    int oy[RN], ox[RN];
    for (uint j = 0; j < RN; j++) {
        ivec2 p = direct_pixel(min(nbase + j * WG_N, N - 1u));
        oy[j] = p.y;
        ox[j] = p.x;
    }
    float acc[RM * RN];
    for (uint i = 0; i < RM * RN; i++)
        acc[i] = 0.0;

    // RM is a multiple of 4 and m_pad of RM (host side), so every row read
    // exists (padding rows are zero) and each vec4 load is aligned.
    uint row_step = KK * uint(pc.m_pad) / 4u;
    ivec2 tap0 = direct_tap0();
    for (int ky = tap0.y; ky < KH; ky += STRIDE) {
        for (int kx = tap0.x; kx < KW; kx += STRIDE) {
            uint off[RN];
            bool inside[RN];
            for (uint j = 0; j < RN; j++)
                off[j] = input_offset(ky, kx, oy[j], ox[j], inside[j]);
            uint row = (uint(ky * KW + kx) * uint(pc.m_pad) + m0) / 4u;
            for (uint ci = 0; ci < uint(pc.c_in); ci++) {
                float v[RN];
                for (uint j = 0; j < RN; j++) {
                    float x = t_in[off[j]];  // loaded, then selected: no branch
                    v[j] = inside[j] ? x : 0.0;
                    off[j] += hw;
                }
                for (uint q = 0; q < RM / 4u; q++) {
                    vec4 wv = t_w4[row + q];
                    for (uint j = 0; j < RN; j++) {
                        acc[(4u * q + 0u) * RN + j] += wv.x * v[j];
                        acc[(4u * q + 1u) * RN + j] += wv.y * v[j];
                        acc[(4u * q + 2u) * RN + j] += wv.z * v[j];
                        acc[(4u * q + 3u) * RN + j] += wv.w * v[j];
                    }
                }
                row += row_step;
            }
        }
    }

    for (uint i = 0; i < RM; i++) {
        uint m = m0 + i;
        if (m >= M)
            break;
        float bv = HAS_BIAS ? t_bias[m] : 0.0;
        for (uint j = 0; j < RN; j++) {
            bool ok = nbase + j * WG_N < N && oy[j] < pc.h_out && ox[j] < pc.w_out;
            if (ok)
                t_out[(m * uint(pc.h_out) + uint(oy[j])) * uint(pc.w_out) + uint(ox[j])] =
                    act_apply(ACT, acc[i * RN + j] + bv);
        }
    }
}

#else
// The 2-D conv's direct form: a lane's RN pixels are consecutive in one
// output row, so neighbouring taps share input columns: per input row and
// channel it loads the NC columns the RN pixels span instead of RN * KW
// values (half the per-lane loads for 3x3 and 4 pixels). Workgroups are
// (64, 1); x counts RN-pixel blocks (ops.c sizes the grid to match).
// A dilated kernel spans (KW - 1) * DIL + 1 columns, so NC grows with DIL.
const int NC = int(RN - 1u) * STRIDE + (KW - 1) * DIL + 1;

void conv_direct_rows()
{
    uint M = uint(pc.c_out);
    uint hw = uint(pc.h_in * pc.w_in);
    uint wb = (uint(pc.w_out) + RN - 1u) / RN;  // blocks per output row
    uint nb = uint(pc.h_out) * wb;
    uint m0 = gl_WorkGroupID.y * RM;
    uint b = min(gl_GlobalInvocationID.x, nb - 1u);
    int oy = int(b / wb), ox0 = int(b % wb * RN);

    uint col[NC];
    bool col_in[NC];
    for (int c = 0; c < NC; c++)
        col[c] = uint(pad_index(ox0 * STRIDE - PAD + c, pc.w_in, col_in[c]));
    float acc[RM * RN];
    for (uint i = 0; i < RM * RN; i++)
        acc[i] = 0.0;

    uint tap_step = uint(pc.m_pad) / 4u;  // vec4s per tap row
    uint row_step = KK * tap_step;        // per input channel
    for (int ky = 0; ky < KH; ky++) {
        bool row_in;
        uint r = uint(pad_index(oy * STRIDE - PAD + ky * DIL, pc.h_in, row_in) * pc.w_in);
        uint off[NC];
        bool ok[NC];
        for (int c = 0; c < NC; c++) {
            off[c] = r + col[c];
            ok[c] = row_in && col_in[c];
        }
        uint row = uint(ky * KW) * tap_step + m0 / 4u;
        for (uint ci = 0; ci < uint(pc.c_in); ci++) {
            float v[NC];
            for (int c = 0; c < NC; c++) {
                float x = t_in[off[c]];  // loaded, then selected: no branch
                v[c] = ok[c] ? x : 0.0;
                off[c] += hw;
            }
            for (int kx = 0; kx < KW; kx++) {
                for (uint q = 0; q < RM / 4u; q++) {
                    vec4 wv = t_w4[row + uint(kx) * tap_step + q];
                    for (uint j = 0; j < RN; j++) {
                        float x = v[int(j) * STRIDE + kx * DIL];
                        acc[(4u * q + 0u) * RN + j] += wv.x * x;
                        acc[(4u * q + 1u) * RN + j] += wv.y * x;
                        acc[(4u * q + 2u) * RN + j] += wv.z * x;
                        acc[(4u * q + 3u) * RN + j] += wv.w * x;
                    }
                }
            }
            row += row_step;
        }
    }

    if (gl_GlobalInvocationID.x >= nb)
        return;
    for (uint i = 0; i < RM; i++) {
        uint m = m0 + i;
        if (m >= M)
            break;
        float bv = HAS_BIAS ? t_bias[m] : 0.0;
        for (uint j = 0; j < RN; j++)
            if (ox0 + int(j) < pc.w_out)
                t_out[(m * uint(pc.h_out) + uint(oy)) * uint(pc.w_out) + uint(ox0) + j] =
                    act_apply(ACT, acc[i * RN + j] + bv);
    }
}
#endif

// Direct form with output channels across the lanes, for layers with few
// pixels and many channels (U-Net bottleneck) where pixel lanes would idle:
// now the pixel coordinates, and so the input loads, are uniform. Weights are
// [K][m_pad] as for conv_direct(); invocation x computes RN pixels of one
// channel.
void conv_direct_by_channel()
{
    uint M = uint(pc.c_out), N = uint(pc.h_out * pc.w_out);
    uint m = gl_GlobalInvocationID.x;
    uint mc = min(m, uint(pc.m_pad) - 1u);
    uint n0 = gl_WorkGroupID.y * RN;
    int oy[RN], ox[RN];
    float acc[RN];
    for (uint j = 0; j < RN; j++) {
        uint n = min(n0 + j, N - 1u);
        oy[j] = int(n) / pc.w_out;
        ox[j] = int(n) % pc.w_out;
        acc[j] = 0.0;
    }
    for (uint ci = 0; ci < uint(pc.c_in); ci++) {
        for (int ky = 0; ky < KH; ky++) {
            for (int kx = 0; kx < KW; kx++) {
                uint k = ci * KK + uint(ky * KW + kx);
                float wv = t_w[k * uint(pc.m_pad) + mc];
                for (uint j = 0; j < RN; j++)
                    acc[j] += wv * load_input(ci, ky, kx, oy[j], ox[j]);
            }
        }
    }
    if (m >= M)
        return;
    float bv = HAS_BIAS ? t_bias[m] : 0.0;
    for (uint j = 0; j < RN; j++)
        if (n0 + j < N)
            t_out[m * N + n0 + j] = act_apply(ACT, acc[j] + bv);
}

void main()
{
    if (FORM == 1u) {
#if TM_TRANSPOSED
        conv_direct();
#else
        conv_direct_rows();
#endif
        return;
    }
    if (FORM == 2u) {
        conv_direct_by_channel();
        return;
    }

    uint M = uint(pc.c_out), N = uint(pc.h_out * pc.w_out);
    uint K = uint(pc.c_in) * KK;
    uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;

    uint nl = gl_LocalInvocationIndex % BN;
    uint n = n0 + nl;
    bool n_ok = n < N;
    int oy = int(n) / pc.w_out, ox = int(n) % pc.w_out;

    float acc[RM * RN];
    for (uint i = 0; i < RM * RN; i++)
        acc[i] = 0.0;

    for (uint k0 = 0; k0 < K; k0 += BK) {
        load_a(m0, k0, M, K);
        load_b(k0, K, nl, n_ok, oy, ox);
        barrier();
        for (uint kl = 0; kl < BK; kl++) {
            float a[RM], b[RN];
            for (uint i = 0; i < RM; i++)
                a[i] = As[kl * BM + ty + i * WG_M];
            for (uint j = 0; j < RN; j++)
                b[j] = Bs[kl * BN + tx + j * WG_N];
            for (uint i = 0; i < RM; i++)
                for (uint j = 0; j < RN; j++)
                    acc[i * RN + j] += a[i] * b[j];
        }
        barrier();
    }

    for (uint i = 0; i < RM; i++) {
        uint m = m0 + ty + i * WG_M;
        if (m >= M)
            break;
        float bv = HAS_BIAS ? t_bias[m] : 0.0;
        for (uint j = 0; j < RN; j++) {
            uint nn = n0 + tx + j * WG_N;
            if (nn < N)
                t_out[m * N + nn] = act_apply(ACT, acc[i * RN + j] + bv);
        }
    }
}
