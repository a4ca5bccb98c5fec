// EGNN layer (E_GCL_vel) forward and hand-written backward on the CPU, compiled at first use.
//
// The same sequence of ATen operations as symformer/models/egnn.py (_Layer.forward/backward),
// called from C++: a layer's ~90 operations then cost their kernels and ATen's dispatch, not the
// Python interpreter's argument parsing per call. The elementwise chains that follow every SiLU
// are fused into single passes (silu_slope_, mul_into_).  Shapes: N nodes, E edges, H width.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <optional>
#include <vector>

using at::Tensor;
using OptTensor = std::optional<Tensor>;

namespace {

// Messages flow j -> i along (src[e], dst[e]). A regular graph has its edges grouped by target,
// k per node, so target gathers are broadcasts and target sums are sums over a (N, k, ...) view.
struct Graph {
  Tensor src, dst;
  int64_t n, k;
  bool regular;

  Tensor source(const Tensor& t) const { return t.index_select(0, src); }

  Tensor target_view(const Tensor& t) const {  // (N, ...) -> (N, 1, ...) broadcastable
    return t.unsqueeze(1);
  }
  Tensor edge_view(const Tensor& t) const {  // (E, ...) -> (N, k, ...)
    std::vector<int64_t> shape{n, k};
    for (int64_t d = 1; d < t.dim(); ++d) shape.push_back(t.size(d));
    return t.view(shape);
  }

  // t_edge_ij += t_node_i, in place (t_edge a fresh intermediate).
  Tensor& add_target_(Tensor& t_edge, const Tensor& t_node) const {
    if (regular) {
      edge_view(t_edge).add_(target_view(t_node));
      return t_edge;
    }
    return t_edge.add_(t_node.index_select(0, dst));
  }

  // x_i - x_j of every edge.
  Tensor diff(const Tensor& x) const {
    Tensor xs = source(x);
    if (regular) return at::sub(target_view(x), edge_view(xs)).flatten(0, 1);
    return at::sub(x.index_select(0, dst), xs);
  }

  // t_target_i * t_edge_ij of every edge.
  Tensor mul_target(const Tensor& t_target, const Tensor& t_edge) const {
    if (regular) return at::mul(target_view(t_target), edge_view(t_edge)).flatten(0, 1);
    return at::mul(t_target.index_select(0, dst), t_edge);
  }

  Tensor sum(const Tensor& t) const {  // over incoming edges: (E, ...) -> (N, ...)
    if (regular) return edge_view(t).sum(1);
    std::vector<int64_t> shape{n};
    for (int64_t d = 1; d < t.dim(); ++d) shape.push_back(t.size(d));
    return at::zeros(shape, t.options()).index_add_(0, dst, t);
  }

  Tensor source_sum(const Tensor& t) const {  // over outgoing edges, the adjoint of source()
    std::vector<int64_t> shape{n};
    for (int64_t d = 1; d < t.dim(); ++d) shape.push_back(t.size(d));
    return at::zeros(shape, t.options()).index_add_(0, src, t);
  }
};

// z <- silu(z) = z s with s = sigmoid(z); returns the slope s + silu(z) (1 - s) when wanted
// (kept by the forward so the backward needs no second sigmoid). z must be contiguous and fresh.
Tensor silu_slope_(Tensor& z, bool slope) {
  Tensor s = at::sigmoid(z);
  if (!slope) {
    z.mul_(s);
    return Tensor();
  }
  TORCH_INTERNAL_ASSERT(z.is_contiguous() && s.is_contiguous());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "silu_slope_", [&] {
    scalar_t* zp = z.data_ptr<scalar_t>();
    scalar_t* sp = s.data_ptr<scalar_t>();
    at::parallel_for(0, z.numel(), 32768, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const scalar_t si = sp[i];
        const scalar_t out = zp[i] * si;
        zp[i] = out;
        sp[i] = si + out * (scalar_t(1) - si);
      }
    });
  });
  return s;
}

// a <- a * b elementwise (same shape, contiguous).
void mul_into_(Tensor& a, const Tensor& b) { a.mul_(b); }

Tensor opt(const OptTensor& t) { return t.has_value() ? *t : Tensor(); }

}  // namespace

// One chunk of nodes and the edges into them. Returns {h_new (undefined without update_h),
// x_new, saved...}: the kNumSaved saved tensors, in the order chunk_backward reads them, only
// when `save`.
std::vector<Tensor> chunk_forward(
    const Tensor& u, const OptTensor& lin_w_, const OptTensor& lin_b_, const Tensor& h,
    const Tensor& x, const Tensor& vel, const Tensor& edge_attr, const Tensor& inv_degree,
    const Tensor& w_1, const Tensor& b_1, const Tensor& w_2, const Tensor& b_2,
    const Tensor& w_c, const Tensor& b_c, const Tensor& w_o, const Tensor& w_v,
    const Tensor& b_v, const Tensor& w_v2, const Tensor& b_v2, const Tensor& w_n,
    const Tensor& b_n, const Tensor& w_n2, const Tensor& b_n2, const Graph& g, bool update_h,
    bool residual, bool norm_diff, bool tanh_, bool save) {
  const Tensor lin_w = opt(lin_w_), lin_b = opt(lin_b_);
  const int64_t H = w_2.size(0);
  // Per-node maps stacked into one product: [W_a; W_b; W_v; W_p], biases [b_1, 0, b_v, b_n].
  auto w1 = w_1.split_with_sizes({H, H, w_1.size(1) - 2 * H}, 1);
  const Tensor w_r = w1[2];
  auto wn = w_n.split(H, 1);
  const Tensor w_q = wn[1];
  std::vector<Tensor> ws{w1[0], w1[1], w_v}, bs{b_1, at::zeros_like(b_1), b_v};
  if (update_h) {
    ws.push_back(wn[0]);
    bs.push_back(b_n);
  }
  const Tensor w_cat = at::cat(ws), b_cat = at::cat(bs);
  Tensor w_eff = w_cat, b_eff = b_cat;
  if (lin_w.defined()) {
    w_eff = at::mm(w_cat, lin_w);
    b_eff = at::addmv(b_cat, w_cat, lin_b);
  }
  const Tensor t = at::addmm(b_eff, u, w_eff.t());  // [N, 3-4 H]
  auto ts = t.split(H, 1);
  const Tensor diff = g.diff(x);  // [E, 3]
  const Tensor radial = (diff * diff).sum(-1, true);  // [E, 1]
  const Tensor r = at::cat({radial, edge_attr}, -1);  // [E, 1 + edge_dim]
  Tensor pre = g.source(ts[1]);
  g.add_target_(pre, ts[0]).addmm_(r, w_r.t());
  Tensor a1 = pre;
  Tensor d1 = silu_slope_(a1, save);
  Tensor m = at::addmm(b_2, a1, w_2.t());
  Tensor d2 = silu_slope_(m, save);
  Tensor a3 = at::addmm(b_c, m, w_c.t());
  Tensor d3 = silu_slope_(a3, save);
  Tensor phi = at::mm(a3, w_o.t());  // [E, 1]
  if (tanh_) phi.tanh_();
  Tensor q = diff, dn = diff;
  if (norm_diff) {
    q = radial.sqrt().add_(1);
    dn = diff / q;
  }
  const Tensor trans = dn * phi;
  const Tensor clamped = at::clamp(trans, -100, 100);  // [E, 3]
  Tensor x_new = at::addcmul(x, g.sum(clamped), inv_degree);
  Tensor sv = ts[2].contiguous();
  Tensor dv = silu_slope_(sv, save);
  const Tensor phi_v = at::addmm(b_v2, sv, w_v2.t());  // [N, 1]
  x_new = at::addcmul(x_new, phi_v, vel);
  Tensor h_new, agg, sz, dz;
  if (update_h) {
    agg = g.sum(m);
    sz = at::addmm(ts[3], agg, w_q.t());
    dz = silu_slope_(sz, save);
    Tensor out = at::addmm(b_n2, sz, w_n2.t());
    h_new = residual ? out.add_(h) : out;
  }
  std::vector<Tensor> res{h_new, x_new};
  if (save) {
    res.insert(res.end(), {u, lin_w, lin_b, w_cat, w_eff, r, w_r, a1, d1, w_2, m, d2, w_c, a3,
                           d3, w_o, phi, diff, dn, q, at::eq(clamped, trans), inv_degree, vel,
                           sv, dv, w_v2, phi_v, w_q, agg, sz, dz, w_n2});
  }
  return res;
}

// Gradients of chunk_forward's differentiable inputs (kNumGrads), in the order of
// _Layer.forward's arguments less inv_degree, graph and flags (undefined where not needed).
std::vector<Tensor> chunk_backward(
    const Tensor& g_h, const Tensor& g_x_, const std::vector<Tensor>& s, const Graph& g,
    bool update_h, bool residual, bool norm_diff, bool tanh_, const std::vector<bool>& need) {
  const Tensor &u = s[0], &lin_w = s[1], &lin_b = s[2], &w_cat = s[3], &w_eff = s[4], &r = s[5],
               &w_r = s[6], &a1 = s[7], &d1 = s[8], &w_2 = s[9], &m = s[10], &d2 = s[11],
               &w_c = s[12], &a3 = s[13], &d3 = s[14], &w_o = s[15], &phi = s[16],
               &diff = s[17], &dn = s[18], &q = s[19], &inside = s[20], &inv_degree = s[21],
               &vel = s[22], &sv = s[23], &dv = s[24], &w_v2 = s[25], &phi_v = s[26],
               &w_q = s[27], &agg = s[28], &sz = s[29], &dz = s[30], &w_n2 = s[31];
  const int64_t H = w_2.size(0), N = u.size(0);
  Tensor g_x = g_x_;
  if (!g_x.defined()) g_x = at::zeros({N, 3}, vel.options());
  // Velocity term.
  const Tensor g_pv = (g_x * vel).sum(-1, true);  // [N, 1]
  const Tensor g_vel = need[5] ? g_x * phi_v : Tensor();
  const Tensor g_v = at::mm(g_pv, w_v2).mul_(dv);
  // Coordinate term: d loss / d clamp(...) is g_x / degree at the target.
  Tensor g_tr = g.mul_target(g_x * inv_degree, inside);  // [E, 3]
  Tensor g_phi = (g_tr * dn).sum(-1, true);  // [E, 1]
  Tensor g_dn = g_tr.mul_(phi);
  if (tanh_) g_phi.mul_(1 - phi * phi);
  // Edge MLP chain.
  const Tensor g3 = at::mul(d3, w_o).mul_(g_phi);
  const Tensor g_o = at::mm(g_phi.t(), a3);  // [1, H]
  const Tensor g_c = at::mm(g3.t(), m), g_bc = g3.sum(0);
  Tensor g2 = at::mm(g3, w_c);  // d loss / d m
  Tensor g_s, g_q, g_n2, g_bn2;
  if (update_h) {
    const Tensor g_out = g_h.defined() ? g_h : at::zeros({N, H}, u.options());
    g_n2 = at::mm(g_out.t(), sz);
    g_bn2 = g_out.sum(0);
    g_s = at::mm(g_out, w_n2).mul_(dz);  // d loss / d s
    g_q = at::mm(g_s.t(), agg);
    g.add_target_(g2, at::mm(g_s, w_q));
  }
  mul_into_(g2, d2);
  const Tensor g_2 = at::mm(g2.t(), a1), g_b2 = g2.sum(0);
  Tensor g1 = at::mm(g2, w_2);
  mul_into_(g1, d1);  // d loss / d pre
  Tensor g_xx;
  if (need[4]) {
    Tensor g_rad = at::mv(g1, w_r.select(1, 0)).unsqueeze(-1);  // [E, 1]
    if (norm_diff) {
      const Tensor g_q_ = (g_dn * dn).sum(-1, true).div_(q).neg_();
      g_dn = g_dn / q;
      g_rad = g_rad + g_q_ / (2 * (q - 1));
    }
    const Tensor g_diff = at::addcmul(g_dn, diff, g_rad, 2);
    g_xx = g_x + g.sum(g_diff) - g.source_sum(g_diff);
  }
  const Tensor g_ea = need[6] ? at::mm(w_r.narrow(1, 1, w_r.size(1) - 1).t(), g1.t()).t()
                              : Tensor();
  std::vector<Tensor> gts{g.sum(g1), g.source_sum(g1), g_v};
  if (update_h) gts.push_back(g_s);
  const Tensor g_t = at::cat(gts, 1);  // d loss / d t
  const Tensor g_weff = at::mm(g_t.t(), u), g_bcat = g_t.sum(0);
  const Tensor g_u = need[0] ? at::mm(g_t, w_eff) : Tensor();
  Tensor g_lw, g_lb, g_wcat = g_weff;
  if (lin_w.defined()) {
    g_wcat = at::addr(at::mm(g_weff, lin_w.t()), g_bcat, lin_b);
    g_lw = at::mm(w_cat.t(), g_weff);
    g_lb = at::mv(w_cat.t(), g_bcat);
  }
  auto gw = g_wcat.split(H);
  auto gb = g_bcat.split(H);
  const Tensor g_1 = at::cat({gw[0], gw[1], at::mm(r.t(), g1).t()}, 1);
  Tensor g_n, g_bn;
  if (update_h) {
    g_n = at::cat({gw[3], g_q}, 1);
    g_bn = gb[3];
  }
  const Tensor g_hres = update_h && residual && need[3] ? g_h : Tensor();
  return {g_u, g_lw, g_lb, g_hres, g_xx, g_vel, g_ea, g_1, gb[0], g_2, g_b2, g_c, g_bc,
          g_o, gw[2], gb[2], at::mm(g_pv.t(), sv), g_pv.sum(0), g_n, g_bn, g_n2, g_bn2};
}

constexpr size_t kNumSaved = 32, kNumGrads = 22;

// Node- and edge-level results of chunk_backward (concatenated over chunks); the others are
// parameter gradients (summed over chunks) or g_h passed through (index 3, taken whole).
bool is_node_grad(size_t i) { return i == 0 || i == 4 || i == 5 || i == 6; }

// The layer on `bounds.size() - 1` chunks of whole systems, one per thread: chunk c holds nodes
// [bounds[c], bounds[c+1]) and, the graph being regular, edges [k bounds[c], k bounds[c+1]),
// with sources local_src[c] numbered within the chunk. Each chunk runs the whole layer
// single-threaded, so a 2-thread step pays one fork and join per layer instead of one per
// operation, and the many node-sized operations too small to split run in parallel as well.
// Irregular graphs run as one chunk with the global src, dst.
std::vector<Tensor> layer_forward(
    const Tensor& u, const OptTensor& lin_w_, const OptTensor& lin_b_, const Tensor& h,
    const Tensor& x, const Tensor& vel, const Tensor& edge_attr, const Tensor& inv_degree,
    const std::vector<Tensor>& w, const Tensor& src, const Tensor& dst, int64_t num_nodes,
    int64_t k, bool regular, const std::vector<int64_t>& bounds,
    const std::vector<Tensor>& local_src, bool update_h, bool residual, bool norm_diff,
    bool tanh_, bool save) {
  TORCH_CHECK(w.size() == 15, "layer_forward: expected 15 weights");
  const Tensor lin_w = opt(lin_w_), lin_b = opt(lin_b_);
  const size_t chunks = bounds.size() - 1;
  std::vector<std::vector<Tensor>> out(chunks);
  auto run = [&](size_t c) {
    at::NoGradGuard no_grad;  // grad mode is thread-local
    const int64_t a = bounds[c], b = bounds[c + 1];
    const bool whole = chunks == 1;
    const Graph g = whole ? Graph{src, dst, num_nodes, k, regular}
                          : Graph{local_src[c], local_src[c], b - a, k, true};
    auto rows = [&](const Tensor& t) { return whole ? t : t.slice(0, a, b); };
    auto edges = [&](const Tensor& t) { return whole ? t : t.slice(0, a * k, b * k); };
    out[c] = chunk_forward(rows(u), lin_w, lin_b, rows(h), rows(x), rows(vel), edges(edge_attr),
                           rows(inv_degree), w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
                           w[8], w[9], w[10], w[11], w[12], w[13], w[14], g, update_h, residual,
                           norm_diff, tanh_, save);
  };
  if (chunks == 1) {
    run(0);
    return out[0];
  }
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) run(c);
  });
  std::vector<Tensor> hs, xs, res;
  for (auto& o : out) {
    hs.push_back(o[0]);
    xs.push_back(o[1]);
  }
  res.push_back(update_h ? at::cat(hs) : Tensor());
  res.push_back(at::cat(xs));
  for (auto& o : out) res.insert(res.end(), o.begin() + 2, o.end());
  return res;
}

// Gradients of layer_forward's differentiable inputs from its saved tensors (kNumSaved per
// chunk, chunk after chunk), in the order of _Layer.forward's arguments less inv_degree.
std::vector<Tensor> layer_backward(
    const OptTensor& g_h_, const OptTensor& g_x_, const std::vector<OptTensor>& saved,
    const Tensor& src, const Tensor& dst, int64_t num_nodes, int64_t k, bool regular,
    const std::vector<int64_t>& bounds, const std::vector<Tensor>& local_src, bool update_h,
    bool residual, bool norm_diff, bool tanh_, std::vector<bool> need) {
  const size_t chunks = bounds.size() - 1;
  TORCH_CHECK(saved.size() == chunks * kNumSaved, "layer_backward: saved tensors do not match");
  const Tensor g_h = opt(g_h_), g_x = opt(g_x_);
  std::vector<std::vector<Tensor>> out(chunks);
  auto run = [&](size_t c) {
    at::NoGradGuard no_grad;
    const int64_t a = bounds[c], b = bounds[c + 1];
    const bool whole = chunks == 1;
    const Graph g = whole ? Graph{src, dst, num_nodes, k, regular}
                          : Graph{local_src[c], local_src[c], b - a, k, true};
    auto rows = [&](const Tensor& t) { return whole || !t.defined() ? t : t.slice(0, a, b); };
    std::vector<Tensor> s;
    s.reserve(kNumSaved);
    for (size_t i = c * kNumSaved; i < (c + 1) * kNumSaved; ++i) s.push_back(opt(saved[i]));
    out[c] = chunk_backward(rows(g_h), rows(g_x), s, g, update_h, residual, norm_diff, tanh_,
                            need);
  };
  if (chunks == 1) {
    run(0);
    return out[0];
  }
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) run(c);
  });
  std::vector<Tensor> res(kNumGrads);
  for (size_t i = 0; i < kNumGrads; ++i) {
    if (!out[0][i].defined()) continue;
    if (i == 3) {
      res[i] = g_h;
    } else if (is_node_grad(i)) {
      std::vector<Tensor> parts;
      for (auto& o : out) parts.push_back(o[i]);
      res[i] = at::cat(parts);
    } else {
      res[i] = out[0][i];
      for (size_t c = 1; c < chunks; ++c) res[i] = res[i] + out[c][i];
    }
  }
  return res;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  namespace py = pybind11;
  module.def("layer_forward", &layer_forward, "EGNN layer forward (see egnn.py _Layer)",
             py::call_guard<py::gil_scoped_release>());
  module.def("layer_backward", &layer_backward, "EGNN layer backward (see egnn.py _Layer)",
             py::call_guard<py::gil_scoped_release>());
}
