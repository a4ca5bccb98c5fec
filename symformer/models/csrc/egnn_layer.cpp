// EGNN layer (E_GCL_vel) forward and hand-written backward on the CPU, compiled at first use.
//
// The computation of symformer/models/_egnn_layers.py (_Layer.forward/backward), in C++: the
// matrix products and sigmoids are ATen's, and the chains of gathers, elementwise operations
// and scatters between them are single passes over the edges (the fused edge loops below). A
// layer then costs its arithmetic and ATen's dispatch, not the Python interpreter's cost per
// operation. Shapes: N nodes, E edges, H width, R = 1 + edge_dim.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <optional>
#include <vector>

using at::Tensor;
using OptTensor = std::optional<Tensor>;

namespace {

// Messages flow j -> i along (src[e], dst[e]). A regular graph has its edges grouped by target,
// k per node (dst is then implied: e / k), so sums over incoming edges are sums over (N, k, ...).
struct Graph {
  Tensor src, dst;
  int64_t n, k;
  bool regular;

  Tensor sum(const Tensor& t) const {  // over incoming edges: (E, H) -> (N, H)
    if (regular) return t.view({n, k, t.size(1)}).sum(1);
    return at::zeros({n, t.size(1)}, t.options()).index_add_(0, dst, t);
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

// ---- Fused edge loops. Each replaces a chain of ATen operations (and their passes over (E, H)
// or (E, 3) tensors) by one pass. They run single-threaded inside a chunk (a thread per chunk);
// the elementwise ones split their edges among threads when the layer runs as one chunk.
// All tensors contiguous; src (and dst when not regular) int64.

struct Edges {
  const int64_t* src;
  const int64_t* dst;
  int64_t k;
  bool regular;
  explicit Edges(const Graph& g)
      : src(g.src.data_ptr<int64_t>()), dst(g.regular ? nullptr : g.dst.data_ptr<int64_t>()),
        k(g.k), regular(g.regular) {}
  int64_t target(int64_t e) const { return regular ? e / k : dst[e]; }
};

constexpr int64_t kGrain = 256;  // edges per task when a loop is split among threads

// diff_ij = x_i - x_j (E, 3); r = [|diff|^2, edge_attr] (E, R); with norm_diff also
// q = |diff| + 1 (E, 1) and dn = diff / q, else q, dn are diff.
std::vector<Tensor> edge_geometry(const Tensor& x, const Tensor& edge_attr, const Graph& g,
                                  bool norm_diff) {
  const int64_t E = g.src.size(0), A = edge_attr.size(1);
  Tensor diff = at::empty({E, 3}, x.options()), r = at::empty({E, A + 1}, x.options());
  Tensor q = norm_diff ? at::empty({E, 1}, x.options()) : diff;
  Tensor dn = norm_diff ? at::empty({E, 3}, x.options()) : diff;
  const Tensor ea = edge_attr.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "edge_geometry", [&] {
    const Edges ed(g);
    const scalar_t *xp = x.data_ptr<scalar_t>(), *eap = ea.data_ptr<scalar_t>();
    scalar_t *dp = diff.data_ptr<scalar_t>(), *rp = r.data_ptr<scalar_t>();
    scalar_t *qp = q.data_ptr<scalar_t>(), *dnp = dn.data_ptr<scalar_t>();
    at::parallel_for(0, E, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        const scalar_t *xi = xp + 3 * ed.target(e), *xj = xp + 3 * ed.src[e];
        scalar_t rad = 0;
        for (int a = 0; a < 3; ++a) {
          const scalar_t d = xi[a] - xj[a];
          dp[3 * e + a] = d;
          rad += d * d;
        }
        rp[(A + 1) * e] = rad;
        for (int64_t c = 0; c < A; ++c) rp[(A + 1) * e + 1 + c] = eap[A * e + c];
        if (norm_diff) {
          const scalar_t qe = std::sqrt(rad) + 1;
          qp[e] = qe;
          for (int a = 0; a < 3; ++a) dnp[3 * e + a] = dp[3 * e + a] / qe;
        }
      }
    });
  });
  return {diff, r, q, dn};
}

// pre_ij = t_i[0:H] + t_j[H:2H] + r_ij w_r^T (E, H), from the per-node products t (N, C).
Tensor edge_preactivation(const Tensor& t, int64_t H, const Tensor& r, const Tensor& w_r,
                          const Graph& g) {
  const int64_t E = g.src.size(0), R = r.size(1), C = t.size(1);
  Tensor pre = at::empty({E, H}, t.options());
  const Tensor wrT = w_r.t().contiguous();  // (R, H)
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "edge_preactivation", [&] {
    const Edges ed(g);
    const scalar_t *tp = t.data_ptr<scalar_t>(), *rp = r.data_ptr<scalar_t>();
    const scalar_t* wp = wrT.data_ptr<scalar_t>();
    scalar_t* out = pre.data_ptr<scalar_t>();
    at::parallel_for(0, E, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        const scalar_t *ti = tp + C * ed.target(e), *tj = tp + C * ed.src[e] + H;
        const scalar_t* re = rp + R * e;
        scalar_t* o = out + H * e;
        for (int64_t h = 0; h < H; ++h) o[h] = re[0] * wp[h];
        for (int64_t c = 1; c < R; ++c)
          for (int64_t h = 0; h < H; ++h) o[h] += re[c] * wp[c * H + h];
        for (int64_t h = 0; h < H; ++h) o[h] += ti[h] + tj[h];
      }
    });
  });
  return pre;
}

// x_new_i = x_i + inv_degree_i sum_j clamp(dn_ij phi_ij, +-100) + phi_v_i vel_i (N, 3), and
// where the clamp let the value through (E, 3, bool).
std::vector<Tensor> coordinate_update(const Tensor& x, const Tensor& dn, const Tensor& phi,
                                      const Tensor& inv_degree, const Tensor& phi_v,
                                      const Tensor& vel, const Graph& g) {
  const int64_t E = g.src.size(0), N = x.size(0);
  Tensor acc = at::zeros({N, 3}, x.options());
  Tensor inside = at::empty({E, 3}, x.options().dtype(at::kBool));
  Tensor x_new = at::empty({N, 3}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "coordinate_update", [&] {
    const Edges ed(g);
    const scalar_t *dnp = dn.data_ptr<scalar_t>(), *pp = phi.data_ptr<scalar_t>();
    scalar_t* ap = acc.data_ptr<scalar_t>();
    bool* ip = inside.data_ptr<bool>();
    for (int64_t e = 0; e < E; ++e) {  // a sum into targets: one thread
      scalar_t* ai = ap + 3 * ed.target(e);
      for (int a = 0; a < 3; ++a) {
        const scalar_t tr = dnp[3 * e + a] * pp[e];
        const scalar_t c = std::min<scalar_t>(std::max<scalar_t>(tr, -100), 100);
        ip[3 * e + a] = c == tr;
        ai[a] += c;
      }
    }
    const scalar_t *xp = x.data_ptr<scalar_t>(), *dg = inv_degree.data_ptr<scalar_t>();
    const scalar_t *pv = phi_v.data_ptr<scalar_t>(), *vp = vel.data_ptr<scalar_t>();
    scalar_t* xn = x_new.data_ptr<scalar_t>();
    for (int64_t i = 0; i < N; ++i)
      for (int a = 0; a < 3; ++a)
        xn[3 * i + a] = (xp[3 * i + a] + ap[3 * i + a] * dg[i]) + pv[i] * vp[3 * i + a];
  });
  return {x_new, inside};
}

// Backward of coordinate_update through the clamp: g_tr = g_x_i / degree_i where inside;
// g_phi = g_tr . dn (times 1 - phi^2 with tanh) (E, 1); g_dn = g_tr phi (E, 3).
std::vector<Tensor> coordinate_backward(const Tensor& g_x, const Tensor& inv_degree,
                                        const Tensor& inside, const Tensor& dn,
                                        const Tensor& phi, bool tanh_, const Graph& g) {
  const int64_t E = g.src.size(0);
  Tensor g_phi = at::empty({E, 1}, dn.options()), g_dn = at::empty({E, 3}, dn.options());
  AT_DISPATCH_FLOATING_TYPES(dn.scalar_type(), "coordinate_backward", [&] {
    const Edges ed(g);
    const scalar_t *gx = g_x.data_ptr<scalar_t>(), *dg = inv_degree.data_ptr<scalar_t>();
    const scalar_t *dnp = dn.data_ptr<scalar_t>(), *pp = phi.data_ptr<scalar_t>();
    const bool* ip = inside.data_ptr<bool>();
    scalar_t *gp = g_phi.data_ptr<scalar_t>(), *gd = g_dn.data_ptr<scalar_t>();
    at::parallel_for(0, E, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        const int64_t i = ed.target(e);
        scalar_t dot = 0;
        for (int a = 0; a < 3; ++a) {
          const scalar_t gt = ip[3 * e + a] ? gx[3 * i + a] * dg[i] : scalar_t(0);
          dot += gt * dnp[3 * e + a];
          gd[3 * e + a] = gt * pp[e];
        }
        gp[e] = tanh_ ? dot * (1 - pp[e] * pp[e]) : dot;
      }
    });
  });
  return {g_phi, g_dn};
}

// out_eh = a_eh * b_h * c_e: d loss / d (m W_c^T + b_c) from the slope a, w_o b and g_phi c.
Tensor scale_rows(const Tensor& a, const Tensor& b, const Tensor& c) {
  const int64_t E = a.size(0), H = a.size(1);
  Tensor out = at::empty_like(a);
  const Tensor bc = b.contiguous();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "scale_rows", [&] {
    const scalar_t *ap = a.data_ptr<scalar_t>(), *bp = bc.data_ptr<scalar_t>();
    const scalar_t* cp = c.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, E, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e)
        for (int64_t h = 0; h < H; ++h) op[H * e + h] = ap[H * e + h] * bp[h] * cp[e];
    });
  });
  return out;
}

// g_eh <- (g_eh + node_{target(e), h}) * slope_eh in place; node may be undefined (no term).
void add_target_mul_(Tensor& g_, const Tensor& node, const Tensor& slope, const Graph& g) {
  const int64_t E = g_.size(0), H = g_.size(1);
  AT_DISPATCH_FLOATING_TYPES(g_.scalar_type(), "add_target_mul_", [&] {
    const Edges ed(g);
    scalar_t* gp = g_.data_ptr<scalar_t>();
    const scalar_t* np = node.defined() ? node.data_ptr<scalar_t>() : nullptr;
    const scalar_t* sp = slope.data_ptr<scalar_t>();
    at::parallel_for(0, E, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        scalar_t* ge = gp + H * e;
        const scalar_t* se = sp + H * e;
        if (np) {
          const scalar_t* ni = np + H * ed.target(e);
          for (int64_t h = 0; h < H; ++h) ge[h] = (ge[h] + ni[h]) * se[h];
        } else {
          for (int64_t h = 0; h < H; ++h) ge[h] *= se[h];
        }
      }
    });
  });
}

// From g1 = d loss / d pre (E, H), in one pass over it: its sums over each node's incoming and
// outgoing edges into columns [0, H) and [H, 2H) of g_t (N, C, zeroed); g_wr = g1^T r (H, R);
// with need_x the position gradient g_xx = g_x + sum_in g_diff - sum_out g_diff (N, 3), where
// g_diff = g_dn + 2 diff (g1 . w_r[:, 0]) (and the norm_diff terms); with need_ea
// g_ea = g1 w_r[:, 1:] (E, R - 1).
std::vector<Tensor> edge_backward(const Tensor& g1, const Tensor& r, const Tensor& w_r,
                                  Tensor& g_t, const Tensor& g_x, const Tensor& g_dn,
                                  const Tensor& diff, const Tensor& dn, const Tensor& q,
                                  bool norm_diff, bool need_x, bool need_ea, const Graph& g) {
  const int64_t E = g1.size(0), H = g1.size(1), R = r.size(1), C = g_t.size(1);
  const Tensor wrT = w_r.t().contiguous();  // (R, H)
  Tensor g_wrT = at::zeros({R, H}, g1.options());
  Tensor g_xx = need_x ? g_x.clone() : Tensor();
  Tensor g_ea = need_ea ? at::empty({E, R - 1}, g1.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(g1.scalar_type(), "edge_backward", [&] {
    const Edges ed(g);
    const scalar_t *gp = g1.data_ptr<scalar_t>(), *rp = r.data_ptr<scalar_t>();
    const scalar_t* wp = wrT.data_ptr<scalar_t>();
    scalar_t *tp = g_t.data_ptr<scalar_t>(), *gw = g_wrT.data_ptr<scalar_t>();
    scalar_t* gx = need_x ? g_xx.data_ptr<scalar_t>() : nullptr;
    scalar_t* ge = need_ea ? g_ea.data_ptr<scalar_t>() : nullptr;
    const scalar_t *gdn = g_dn.data_ptr<scalar_t>(), *dp = diff.data_ptr<scalar_t>();
    const scalar_t *dnp = dn.data_ptr<scalar_t>(), *qp = q.data_ptr<scalar_t>();
    for (int64_t e = 0; e < E; ++e) {  // sums into nodes: one thread
      const int64_t i = ed.target(e), j = ed.src[e];
      const scalar_t* g_e = gp + H * e;
      scalar_t *ti = tp + C * i, *sj = tp + C * j + H;
      for (int64_t h = 0; h < H; ++h) {
        ti[h] += g_e[h];
        sj[h] += g_e[h];
      }
      for (int64_t c = 0; c < R; ++c) {
        const scalar_t rc = rp[R * e + c];
        scalar_t* gwc = gw + c * H;
        for (int64_t h = 0; h < H; ++h) gwc[h] += rc * g_e[h];
      }
      if (need_ea) {
        for (int64_t c = 1; c < R; ++c) {
          scalar_t dot = 0;
          for (int64_t h = 0; h < H; ++h) dot += g_e[h] * wp[c * H + h];
          ge[(R - 1) * e + c - 1] = dot;
        }
      }
      if (need_x) {
        scalar_t g_rad = 0;
        for (int64_t h = 0; h < H; ++h) g_rad += g_e[h] * wp[h];
        const scalar_t* gd = gdn + 3 * e;
        scalar_t gdq[3] = {gd[0], gd[1], gd[2]};
        if (norm_diff) {  // dn = diff / q with q = |diff| + 1
          const scalar_t qe = qp[e];
          scalar_t dot = 0;
          for (int a = 0; a < 3; ++a) dot += gd[a] * dnp[3 * e + a];
          for (int a = 0; a < 3; ++a) gdq[a] = gd[a] / qe;
          g_rad += -(dot / qe) / (2 * (qe - 1));
        }
        for (int a = 0; a < 3; ++a) {
          const scalar_t g_diff = gdq[a] + 2 * dp[3 * e + a] * g_rad;
          gx[3 * i + a] += g_diff;
          gx[3 * j + a] -= g_diff;
        }
      }
    }
  });
  return {g_wrT.t(), g_xx, g_ea};
}

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
  // diff [E, 3], r = [|diff|^2, edge_attr] [E, 1 + edge_dim], q [E, 1] and dn [E, 3]
  const Tensor xc = x.contiguous();
  const auto geometry = edge_geometry(xc, edge_attr, g, norm_diff);
  const Tensor &diff = geometry[0], &r = geometry[1], &q = geometry[2], &dn = geometry[3];
  Tensor a1 = edge_preactivation(t, H, r, w_r, g);  // [E, H]
  Tensor d1 = silu_slope_(a1, save);
  Tensor m = at::addmm(b_2, a1, w_2.t());
  Tensor d2 = silu_slope_(m, save);
  Tensor a3 = at::addmm(b_c, m, w_c.t());
  Tensor d3 = silu_slope_(a3, save);
  Tensor phi = at::mm(a3, w_o.t());  // [E, 1]
  if (tanh_) phi.tanh_();
  Tensor sv = ts[2].contiguous();
  Tensor dv = silu_slope_(sv, save);
  const Tensor phi_v = at::addmm(b_v2, sv, w_v2.t());  // [N, 1]
  const Tensor inv_deg = inv_degree.contiguous();
  const auto update = coordinate_update(xc, dn, phi, inv_deg, phi_v, vel.contiguous(), g);
  const Tensor &x_new = update[0], &inside = update[1];
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
                           d3, w_o, phi, diff, dn, q, inside, inv_deg, vel,
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
  g_x = g_x.defined() ? g_x.contiguous() : at::zeros({N, 3}, vel.options());
  // Velocity term.
  const Tensor g_pv = (g_x * vel).sum(-1, true);  // [N, 1]
  const Tensor g_vel = need[5] ? g_x * phi_v : Tensor();
  const Tensor g_v = at::mm(g_pv, w_v2).mul_(dv);
  // Coordinate term: d loss / d clamp(...) is g_x / degree at the target.
  const auto coord = coordinate_backward(g_x, inv_degree, inside, dn, phi, tanh_, g);
  const Tensor &g_phi = coord[0], &g_dn = coord[1];  // [E, 1], [E, 3]
  // Edge MLP chain.
  const Tensor g3 = scale_rows(d3, w_o, g_phi);
  const Tensor g_o = at::mm(g_phi.t(), a3);  // [1, H]
  const Tensor g_c = at::mm(g3.t(), m), g_bc = g3.sum(0);
  Tensor g2 = at::mm(g3, w_c);  // d loss / d m
  Tensor g_s, g_q, g_n2, g_bn2, g_sq;
  if (update_h) {
    const Tensor g_out = g_h.defined() ? g_h : at::zeros({N, H}, u.options());
    g_n2 = at::mm(g_out.t(), sz);
    g_bn2 = g_out.sum(0);
    g_s = at::mm(g_out, w_n2).mul_(dz);  // d loss / d s
    g_q = at::mm(g_s.t(), agg);
    g_sq = at::mm(g_s, w_q);
  }
  add_target_mul_(g2, g_sq, d2, g);
  const Tensor g_2 = at::mm(g2.t(), a1), g_b2 = g2.sum(0);
  Tensor g1 = at::mm(g2, w_2).mul_(d1);  // d loss / d pre
  // d loss / d t: [sums of g1 over incoming edges, over outgoing edges, g_v, g_s]
  Tensor g_t = at::zeros({N, (update_h ? 4 : 3) * H}, u.options());
  g_t.narrow(1, 2 * H, H).copy_(g_v);
  if (update_h) g_t.narrow(1, 3 * H, H).copy_(g_s);
  const auto edge = edge_backward(g1, r, w_r, g_t, g_x, g_dn, diff, dn, q, norm_diff, need[4],
                                  need[6], g);
  const Tensor &g_wr = edge[0], &g_xx = edge[1], &g_ea = edge[2];
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
  const Tensor g_1 = at::cat({gw[0], gw[1], g_wr}, 1);
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

// How a layer is split among threads: chunk c holds the whole systems of nodes
// [bounds[c], bounds[c+1]) and, the graph being regular, edges [k bounds[c], k bounds[c+1]), with
// sources local_src[c] numbered within the chunk. One chunk is the whole graph (src, dst).
struct Chunks {
  const Tensor &src, &dst;
  int64_t num_nodes, k;
  bool regular;
  const std::vector<int64_t>& bounds;
  const std::vector<Tensor>& local_src;

  size_t size() const { return bounds.size() - 1; }
  bool whole() const { return size() == 1; }
  Graph graph(size_t c) const {
    if (whole()) return Graph{src, dst, num_nodes, k, regular};
    return Graph{local_src[c], local_src[c], bounds[c + 1] - bounds[c], k, true};
  }
  Tensor rows(const Tensor& t, size_t c) const {
    return whole() || !t.defined() ? t : t.slice(0, bounds[c], bounds[c + 1]);
  }
  Tensor edges(const Tensor& t, size_t c) const {
    return whole() ? t : t.slice(0, k * bounds[c], k * bounds[c + 1]);
  }
  // fn(c) for every chunk, one thread each: a 2-thread step then pays one fork and join per
  // layer instead of one per operation, and the node-sized operations too small to split run
  // in parallel too. Inside a chunk, ATen's operations run single-threaded.
  template <typename F>
  std::vector<std::vector<Tensor>> run(const F& fn) const {
    std::vector<std::vector<Tensor>> out(size());
    auto one = [&](int64_t c) {
      at::NoGradGuard no_grad;  // grad mode is thread-local
      out[c] = fn(static_cast<size_t>(c));
    };
    if (whole()) {
      one(0);
    } else {
      at::parallel_for(0, size(), 1, [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) one(c);
      });
    }
    return out;
  }
};

// The layer over chunks (see Chunks); irregular graphs run as one chunk. Returns
// chunk_forward's results, with h_new and x_new joined and the saved tensors chunk after chunk.
std::vector<Tensor> layer_forward(
    const Tensor& u, const OptTensor& lin_w_, const OptTensor& lin_b_, const Tensor& h,
    const Tensor& x, const Tensor& vel, const Tensor& edge_attr, const Tensor& inv_degree,
    const std::vector<Tensor>& w, const Tensor& src, const Tensor& dst, int64_t num_nodes,
    int64_t k, bool regular, const std::vector<int64_t>& bounds,
    const std::vector<Tensor>& local_src, bool update_h, bool residual, bool norm_diff,
    bool tanh_, bool save) {
  TORCH_CHECK(w.size() == 15, "layer_forward: expected 15 weights");
  const Tensor lin_w = opt(lin_w_), lin_b = opt(lin_b_);
  const Chunks ch{src, dst, num_nodes, k, regular, bounds, local_src};
  auto out = ch.run([&](size_t c) {
    return chunk_forward(ch.rows(u, c), lin_w, lin_b, ch.rows(h, c), ch.rows(x, c),
                         ch.rows(vel, c), ch.edges(edge_attr, c), ch.rows(inv_degree, c), w[0],
                         w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11],
                         w[12], w[13], w[14], ch.graph(c), update_h, residual, norm_diff, tanh_,
                         save);
  });
  if (ch.whole()) return out[0];
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
  const Chunks ch{src, dst, num_nodes, k, regular, bounds, local_src};
  TORCH_CHECK(saved.size() == ch.size() * kNumSaved,
              "layer_backward: saved tensors do not match");
  const Tensor g_h = opt(g_h_), g_x = opt(g_x_);
  auto out = ch.run([&](size_t c) {
    std::vector<Tensor> s;
    s.reserve(kNumSaved);
    for (size_t i = c * kNumSaved; i < (c + 1) * kNumSaved; ++i) s.push_back(opt(saved[i]));
    return chunk_backward(ch.rows(g_h, c), ch.rows(g_x, c), s, ch.graph(c), update_h, residual,
                          norm_diff, tanh_, need);
  });
  if (ch.whole()) return out[0];
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
      for (size_t c = 1; c < ch.size(); ++c) res[i] = res[i] + out[c][i];
    }
  }
  return res;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  namespace py = pybind11;
  module.def("layer_forward", &layer_forward, "EGNN layer forward (see _egnn_layers.py _Layer)",
             py::call_guard<py::gil_scoped_release>());
  module.def("layer_backward", &layer_backward, "EGNN layer backward (see _egnn_layers.py _Layer)",
             py::call_guard<py::gil_scoped_release>());
}
