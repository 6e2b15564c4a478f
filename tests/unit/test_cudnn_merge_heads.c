/* Merging of head convolutions in the cudnn backend (npt__gpu_plan_layout, cudnn_plan.c): two
 * 3x3 convolutions on one input, each read only by its 1x1 heads (the shipped model's hm1 and
 * box1), become one step running one convolution with concatenated weights and one heads
 * epilogue.  Host-side only (the layout of a plan makes no device call), so it runs without a
 * GPU; what the merged step computes is checked against the CPU backend on a GPU by
 * tests/gpu/test_gpu_backend.c.  Skipped in a build without CUDA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifdef NPT_HAVE_CUDNN_BACKEND
#include "nn/cpu/cpu_debug.h"
#include "nn/cuda/cudnn_internal.h"
#include "nn/graph.h"

static npt__gpu_plan *layout(const npt_graph *g, int batch, int h, int w) {
  npt__gpu_plan *p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->g = g, p->batch = batch, p->h = h, p->w = w;
  int rc = npt__gpu_plan_layout(p);
  if (rc < 0)
    fail_msg("layout: %s", npt_error_msg(rc));
  return p;
}

static const npt_node *node(const npt_graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0)
      return &g->nodes[i];
  fail_msg("no node %s", name);
  return NULL;
}

/* The step whose node (or one of whose heads) is `name`, or NULL. */
static const npt__gpu_step *step_of(const npt__gpu_plan *p, const char *name) {
  for (int i = 0; i < p->n_steps; i++) {
    const npt__gpu_step *s = &p->steps[i];
    if (strcmp(s->node->name, name) == 0)
      return s;
    for (int h = 0; h < s->n_tail; h++)
      if (strcmp(s->tail[h]->name, name) == 0)
        return s;
  }
  return NULL;
}

static void test_shipped_model_merges_hm1_and_box1(void **state) {
  (void)state;
  const char *src = getenv("NPT_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/models/nptrack.h5", src ? src : ".");
  npt_graph *g;
  int rc = npt_graph_load(&g, path);
  if (rc < 0)
    fail_msg("%s", npt_error_msg(rc));
  const npt_node *hm1 = node(g, "hm1"), *box1 = node(g, "box1");

  setenv("NPT_CUDNN_MERGE_HEADS", "1", 1);
  npt__gpu_plan *p = layout(g, 2, 256, 192);
  unsetenv("NPT_CUDNN_MERGE_HEADS"); /* the default (until a GPU has run it): not merged */
  npt__gpu_plan *q = layout(g, 2, 256, 192);
  setenv("NPT_CUDNN_MERGE_HEADS", "0", 1);
  npt__gpu_plan *q0 = layout(g, 2, 256, 192);
  unsetenv("NPT_CUDNN_MERGE_HEADS");
  assert_int_equal(q0->merged_steps, 0);
  npt__gpu_plan_destroy(q0);

  assert_int_equal(p->merged_steps, 1);
  assert_int_equal(p->n_mnodes, 1);
  assert_int_equal(q->merged_steps, 0);
  assert_int_equal(p->n_steps, q->n_steps - 1); /* box1's step is gone */
  assert_int_equal(p->n_tensors, g->n_tensors + 1);
  assert_int_equal(q->n_tensors, g->n_tensors);

  /* Unmerged: hm1 and box1 each with their heads. */
  const npt__gpu_step *a = step_of(q, "hm1"), *b = step_of(q, "box1");
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_equal(a->node, hm1);
  assert_ptr_equal(b->node, box1);
  assert_int_equal(a->n_tail, 1);
  assert_int_equal(b->n_tail, 2);

  /* Merged: one step, both heads sets, at hm1's place; hm1 and box1 never stored. */
  const npt__gpu_step *m = step_of(p, "heatmap");
  assert_non_null(m);
  assert_ptr_equal(step_of(p, "size"), m);
  assert_ptr_equal(step_of(p, "offset"), m);
  assert_null(step_of(p, "hm1"));
  assert_null(step_of(p, "box1"));
  assert_int_equal(m->merged, 1);
  assert_int_equal(m->kind, NPT__STEP_CUDNN);
  assert_string_equal(m->node->name, "hm1+box1");
  const npt_node *mn = m->node;
  assert_int_equal(mn->c_out, hm1->c_out + box1->c_out);
  assert_int_equal(mn->c_in, hm1->c_in);
  assert_int_equal(mn->inputs[0], hm1->inputs[0]);
  assert_int_equal(mn->kh, 3);
  assert_int_equal(mn->act, hm1->act);
  assert_int_equal(m->act, (int)hm1->act);
  assert_int_equal(mn->output, g->n_tensors);
  assert_int_equal(m->out, g->n_tensors);
  assert_int_equal(p->t[mn->output].c, mn->c_out);
  assert_int_equal(p->t[mn->output].h, p->t[hm1->output].h);
  assert_int_equal(p->t[mn->output].stored, 0);
  assert_int_equal(p->t[hm1->output].stored, 0);
  assert_int_equal(p->t[box1->output].stored, 0);
  assert_int_equal(m->n_tail, 3);
  for (int h = 0; h < m->n_tail; h++) {
    int from_hm1 = m->tail[h]->inputs[0] == hm1->output;
    assert_int_equal(m->tail_c0[h], from_hm1 ? 0 : hm1->c_out);
    assert_int_equal(p->t[m->tail[h]->output].stored, 1);
  }
  assert_int_equal(m->tail[0]->inputs[0], hm1->output); /* heatmap first */
  /* Weights and biases: hm1's outputs, then box1's. */
  size_t per = (size_t)hm1->c_in * 9;
  assert_memory_equal(mn->weight, hm1->weight, per * hm1->c_out * sizeof(float));
  assert_memory_equal(mn->weight + per * hm1->c_out, box1->weight,
                      per * box1->c_out * sizeof(float));
  assert_memory_equal(mn->bias, hm1->bias, hm1->c_out * sizeof(float));
  assert_memory_equal(mn->bias + hm1->c_out, box1->bias, box1->c_out * sizeof(float));
  /* The merged trunk's pre-epilogue output is the one cuDNN writes (modelled bytes). */
  double raw_p = 0, raw_q = 0, r;
  for (int i = 0; i < p->n_steps; i++)
    npt__gpu_step_bytes(p, &p->steps[i], &r), raw_p += r;
  for (int i = 0; i < q->n_steps; i++)
    npt__gpu_step_bytes(q, &q->steps[i], &r), raw_q += r;
  assert_true(raw_p == raw_q); /* the same pre-epilogue bytes, in one buffer instead of two */
  npt__gpu_plan_destroy(p);
  npt__gpu_plan_destroy(q);
  npt_graph_free(g);
}

/* A small network with two 3x3 head convs on `f` (the second on `alt` when other_input), the
 * second with activation `act2`. */
static npt_graph *heads_net(npt_act act2, int other_input) {
  npt__gb b;
  assert_int_equal(npt__gb_init(&b, 3), 0);
  const npt_act S = NPT_ACT_SILU, N = NPT_ACT_NONE, G = NPT_ACT_SIGMOID;
  int stem = npt__gb_conv(&b, "stem", 0, 16, 3, 1, 1, 1, 1, S);
  int f = npt__gb_conv(&b, "f", stem, 16, 3, 1, 1, 1, 1, S);
  int alt = npt__gb_conv(&b, "alt", stem, 16, 3, 1, 1, 1, 1, S);
  int ha = npt__gb_conv(&b, "ha", f, 16, 3, 1, 1, 1, 1, S);
  int hm = npt__gb_conv(&b, "heatmap", ha, 2, 1, 1, 0, 1, 1, G);
  int hb = npt__gb_conv(&b, "hb", other_input ? alt : f, 16, 3, 1, 1, 1, 1, act2);
  int sz = npt__gb_conv(&b, "size", hb, 2, 1, 1, 0, 1, 1, N);
  int of = npt__gb_conv(&b, "offset", hb, 2, 1, 1, 0, 1, 1, N);
  assert_true(hm >= 0 && sz >= 0 && of >= 0);
  return npt__gb_finish(&b, hm, sz, of, -1);
}

static void test_structural_rule(void **state) {
  (void)state;
  setenv("NPT_CUDNN_MERGE_HEADS", "1", 1);
  struct {
    npt_act act2;
    int other_input, merged;
  } cases[] = {
      {NPT_ACT_SILU, 0, 1}, /* the pattern, other names than the shipped model's */
      {NPT_ACT_RELU, 0, 0}, /* another activation: one epilogue cannot apply both */
      {NPT_ACT_SILU, 1, 0}, /* another input */
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    npt_graph *g = heads_net(cases[k].act2, cases[k].other_input);
    assert_non_null(g);
    npt__gpu_plan *p = layout(g, 1, 32, 32);
    assert_int_equal(p->merged_steps, cases[k].merged);
    const npt__gpu_step *s = step_of(p, "size");
    assert_non_null(s);
    assert_int_equal(s->merged, cases[k].merged);
    assert_string_equal(s->node->name, cases[k].merged ? "ha+hb" : "hb");
    if (cases[k].merged) {
      assert_int_equal(s->node->c_out, 32);
      assert_int_equal(s->n_tail, 3);
      assert_int_equal(s->tail_c0[1], 16);
    }
    npt__gpu_plan_destroy(p);
    if (cases[k].merged) {
      /* 10000^2: each 16-channel trunk has 1.6e9 elements, a merged one would have 3.2e9, more
       * than cuDNN's descriptors index: not merged. */
      p = layout(g, 1, 10000, 10000);
      assert_int_equal(p->merged_steps, 0);
      assert_string_equal(step_of(p, "size")->node->name, "hb");
      npt__gpu_plan_destroy(p);
    }
    npt_graph_free(g);
  }
  unsetenv("NPT_CUDNN_MERGE_HEADS");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shipped_model_merges_hm1_and_box1),
      cmocka_unit_test(test_structural_rule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

#else
static void skip_without_cuda(void **state) {
  (void)state;
  skip();
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(skip_without_cuda)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
