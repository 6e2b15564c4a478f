/* Which cudnn-backend steps cuDNN may fuse (npt__gpu_fused_eligible, src/nn/cuda/cudnn_fused.c):
 * host-side rules, checked without a GPU on hand-made plans.  What cuDNN then does with the
 * graph (engines, numbers) is checked on a GPU by tests/gpu/test_gpu_backend.c, which runs every
 * network with and without fusion against the CPU backend.  Skipped in a build without CUDA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#ifdef NPT_HAVE_CUDNN_BACKEND
#include "nn/cuda/cudnn_internal.h"

typedef struct fixture {
  npt__gpu_tensor t[4]; /* 0: input, 1: output, 2: same-shape addend, 3: half-size addend */
  npt__gpu_plan p;
  npt_node n;
  npt__gpu_step s;
} fixture;

/* A 3x3 cuDNN convolution 16 -> 32 with SiLU, batch 2, 64 x 64 output. */
static void setup(fixture *f) {
  memset(f, 0, sizeof *f);
  f->t[0] = (npt__gpu_tensor){.c = 16, .h = 64, .w = 64, .dt = NPT_DT_F16, .stored = 1};
  f->t[1] = (npt__gpu_tensor){.c = 32, .h = 64, .w = 64, .dt = NPT_DT_F16, .stored = 1};
  f->t[2] = f->t[1];
  f->t[3] = (npt__gpu_tensor){.c = 32, .h = 32, .w = 32, .dt = NPT_DT_F16, .stored = 1};
  f->p.t = f->t, f->p.n_tensors = 4, f->p.batch = 2, f->p.h = 128, f->p.w = 128;
  f->n.op = NPT_OP_CONV2D, f->n.c_in = 16, f->n.c_out = 32, f->n.kh = f->n.kw = 3;
  f->n.stride = f->n.dilation = f->n.groups = 1, f->n.pad = 1, f->n.n_inputs = 1;
  f->n.inputs[0] = 0, f->n.output = 1, f->n.act = NPT_ACT_SILU;
  f->s.kind = NPT__STEP_CUDNN, f->s.node = &f->n, f->s.out = 1, f->s.act = NPT_ACT_SILU;
}

static void test_fusable_steps(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 1); /* conv + bias + SiLU */
  f.s.act = NPT_ACT_RELU;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 1);
  f.s.act = NPT_ACT_SIGMOID;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 1);
  f.s.act = NPT_ACT_NONE; /* conv + bias alone (a neck's 1x1) */
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 1);
  /* A residual block's second conv: the ADD's other input at the output's own shape. */
  f.s.n_add = 1, f.s.add_t[0] = 2, f.s.add_scale[0] = 1, f.s.act = NPT_ACT_SILU;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 1);
  /* fp32 output (a head written by a cuDNN conv). */
  f.t[1].dt = NPT_DT_F32;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 1);
}

static void test_steps_left_to_the_epilogue(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  f.s.n_add = 1, f.s.add_t[0] = 3, f.s.add_scale[0] = 2, f.s.add_bilinear[0] = 1;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 0); /* upsampled addend */
  setup(&f);
  f.s.n_add = 2, f.s.add_t[0] = 2, f.s.add_t[1] = 2, f.s.add_scale[0] = f.s.add_scale[1] = 1;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 0); /* two addends */
  setup(&f);
  f.s.n_add = 1, f.s.add_t[0] = 3, f.s.add_scale[0] = 1;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 0); /* addend of another shape */
  setup(&f);
  f.s.n_tail = 1;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 0); /* 1x1 heads in the epilogue */
  setup(&f);
  f.n.groups = 2;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 0); /* grouped */
  setup(&f);
  f.s.kind = NPT__STEP_DIRECT;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 0); /* not a cuDNN step */
  setup(&f);
  f.s.kind = NPT__STEP_ELTWISE;
  assert_int_equal(npt__gpu_fused_eligible(&f.p, &f.s), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fusable_steps),
      cmocka_unit_test(test_steps_left_to_the_epilogue),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

#else
static void test_no_cuda(void **state) {
  (void)state;
  skip();
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_no_cuda)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
