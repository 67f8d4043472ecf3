// Multi-goal ("instruction") hindsight relabeling, batched over trajectories.
//
// Layout of one trajectory with T transitions, k goals of dimension d:
//   goals    (T+1, k, d+1)  goal values in [..., :d], reached flag (0/1) in [..., d]
//   achieved (T+1, d)       goal-space value achieved at each step
//   rl2s     (T+1, C)       float32, column 0 = reward of the previous transition
//   dones    (T,)           bool
// Transition t (from row t to row t+1) earns reward 1 when achieved[t+1] is within the
// tolerance of the active goal (the first one not yet reached); reaching the k-th goal
// ends the episode. See amago_fast/relabel/reference.py for the same algorithm in Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <utility>
#include <vector>

#include "relabel/array_checks.hpp"
#include "relabel/batch_outputs.hpp"
#include "relabel/relabel_common.hpp"

namespace py = pybind11;

namespace amago_fast {
namespace relabel {
namespace {

constexpr int kStrategySome = 1;
constexpr int kStrategyAll = 2;

struct MGTraj {
  const void* goals = nullptr;
  const void* achieved = nullptr;
  const float* rl2s = nullptr;
  const bool* dones = nullptr;
  int64_t T = 0;
  // phase 1 (plan)
  int64_t new_len = 0;
  int64_t num_success = 0;
  // phase 2 (outputs)
  void* goals_out = nullptr;
  float* rews_out = nullptr;
  bool* dones_out = nullptr;
  float* rl2s_out = nullptr;
};

struct MGShape {
  int64_t k, d, cols;
};

// Instruction slots are encoded as int64: src >= 0 is a row of `achieved`,
// src < 0 is original goal number (-1 - src).
template <typename S>
inline const S* slot_ptr(const S* goals, const S* ach, int64_t src, int64_t d) {
  return src >= 0 ? ach + src * d : goals + (-1 - src) * (d + 1);
}

// Phase 1: choose the new instruction, replay it, find where the trajectory is cut.
template <typename S>
void plan_one(MGTraj& tr, const MGShape& sh, const double* u, int strategy, double tol,
              int64_t* inst, int64_t* succ) {
  const S* goals = static_cast<const S*>(tr.goals);  // row 0 holds the real instruction
  const S* ach = static_cast<const S*>(tr.achieved);
  const int64_t k = sh.k, d = sh.d, T = tr.T;

  // 1. Real goals reached, in order, and the steps (rows 1..T) where that happened.
  std::vector<int64_t> real(k);
  int64_t n = 0;
  for (int64_t t = 1; n < k; ++t) {
    t = first_within(ach, d, t, T, goals + n * (d + 1), tol);
    if (t > T) break;
    real[n++] = t;
  }

  // 2. How many alternative goals to add.
  int64_t h = (strategy == kStrategySome) ? uniform_index(u[0], k - n + 1) : k - n;
  const int64_t num_candidates = T - n;  // rows 1..T that did not reach a real goal
  h = std::min(h, num_candidates);

  // 3. h distinct candidates by a partial Fisher-Yates shuffle of the virtual array
  //    [0, num_candidates); only the (at most 2h) swapped positions are stored.
  std::vector<std::pair<int64_t, int64_t>> swapped;  // position -> value
  auto get = [&](int64_t pos) {
    for (const auto& pv : swapped)
      if (pv.first == pos) return pv.second;
    return pos;
  };
  auto put = [&](int64_t pos, int64_t val) {
    for (auto& pv : swapped)
      if (pv.first == pos) {
        pv.second = val;
        return;
      }
    swapped.emplace_back(pos, val);
  };
  std::vector<std::pair<int64_t, int64_t>> picks;  // (row, slot source)
  picks.reserve(n + h);
  for (int64_t i = 0; i < n; ++i) picks.emplace_back(real[i], -1 - i);
  for (int64_t j = 0; j < h; ++j) {
    const int64_t r = j + uniform_index(u[1 + j], num_candidates - j);
    const int64_t vj = get(j), vr = get(r);
    put(j, vr);
    put(r, vj);
    int64_t row = vr + 1;  // candidate index -> row, skipping rows that reached real goals
    for (int64_t i = 0; i < n; ++i)
      if (real[i] <= row) ++row;
    picks.emplace_back(row, row);
  }

  // 4. New instruction: chosen goals by row, then the remaining original slots.
  std::sort(picks.begin(), picks.end());
  const int64_t m = static_cast<int64_t>(picks.size());
  for (int64_t i = 0; i < m; ++i) inst[i] = picks[i].second;
  for (int64_t i = m; i < k; ++i) inst[i] = -1 - i;

  // 5. Replay under the new instruction.
  int64_t a = 0;
  for (int64_t t = 1; a < k; ++t) {
    t = first_within(ach, d, t, T, slot_ptr(goals, ach, inst[a], d), tol);
    if (t > T) break;
    succ[a++] = t;
  }
  tr.num_success = a;
  tr.new_len = (a == k) ? succ[k - 1] : T;
}

// Phase 2: write the relabeled goals, rewards, dones and rl2s of length new_len.
template <typename S>
void fill_one(const MGTraj& tr, const MGShape& sh, const int64_t* inst, const int64_t* succ) {
  const S* goals = static_cast<const S*>(tr.goals);
  const S* ach = static_cast<const S*>(tr.achieved);
  const int64_t k = sh.k, d = sh.d, gs = d + 1, C = sh.cols, L = tr.new_len;

  std::vector<S> row(k * gs);  // one goals observation, flags updated as goals are reached
  for (int64_t i = 0; i < k; ++i) {
    std::memcpy(row.data() + i * gs, slot_ptr(goals, ach, inst[i], d), sizeof(S) * d);
    row[i * gs + d] = S(0);
  }
  // Rows only change where a goal is reached: fill each constant run [t0, t1) by
  // writing one row and doubling the copied block (memcpy bandwidth, not per-row calls).
  S* gout = static_cast<S*>(tr.goals_out);
  const int64_t row_len = k * gs;
  int64_t t0 = 0;
  for (int64_t a = 0; a <= tr.num_success; ++a) {
    const int64_t t1 = (a < tr.num_success) ? std::min(succ[a], L + 1) : L + 1;
    if (a > 0) row[(a - 1) * gs + d] = S(1);  // goal a-1 reached at row succ[a-1] = t0
    if (t1 > t0) {
      S* block = gout + t0 * row_len;
      std::memcpy(block, row.data(), sizeof(S) * row_len);
      for (int64_t done = 1, total = t1 - t0; done < total; done *= 2)
        std::memcpy(block + done * row_len, block,
                    sizeof(S) * row_len * std::min(done, total - done));
    }
    t0 = t1;
  }

  std::fill(tr.rews_out, tr.rews_out + L, 0.0f);
  for (int64_t i = 0; i < tr.num_success; ++i) tr.rews_out[succ[i] - 1] = 1.0f;

  if (L > 0) std::memcpy(tr.dones_out, tr.dones, sizeof(bool) * L);
  if (tr.num_success == k) tr.dones_out[L - 1] = true;

  std::memcpy(tr.rl2s_out, tr.rl2s, sizeof(float) * (L + 1) * C);
  for (int64_t t = 0; t < L; ++t) tr.rl2s_out[(t + 1) * C] = tr.rews_out[t];
}

template <typename S>
void run_all(std::vector<MGTraj>& trajs, const MGShape& sh, const double* draws, int strategy,
             double tol, int num_threads, std::vector<int64_t>& inst, std::vector<int64_t>& succ,
             int phase) {
  const int64_t B = static_cast<int64_t>(trajs.size()), k = sh.k;
  int64_t rows = 0;
  for (const auto& tr : trajs) rows += tr.T;
  parallel_for(B, useful_threads(rows, num_threads), [&](int64_t b) {
    if (phase == 1)
      plan_one<S>(trajs[b], sh, draws + b * (1 + k), strategy, tol, inst.data() + b * k,
                  succ.data() + b * k);
    else
      fill_one<S>(trajs[b], sh, inst.data() + b * k, succ.data() + b * k);
  });
}

py::list relabel_multigoal(py::list goals, py::list achieved, py::list rl2s, py::list dones,
                           py::array draws, int64_t k, int64_t d, int strategy, double tol,
                           int num_threads) {
  const int64_t B = static_cast<int64_t>(goals.size());
  // Bounded so that 1 + k, d + 1 and B * k cannot overflow (found by the ASan/UBSan fuzz).
  require(k >= 1 && d >= 1 && k < (int64_t{1} << 32) && d < (int64_t{1} << 32),
          "num_goals and goal_dim must be in [1, 2**32)");
  require(strategy == kStrategySome || strategy == kStrategyAll, "strategy must be 1 or 2");
  require(achieved.size() == goals.size() && rl2s.size() == goals.size() &&
              dones.size() == goals.size(),
          "goals, achieved, rl2s and dones must have one entry per trajectory");
  require(draws.dtype().kind() == 'f' && draws.dtype().itemsize() == 8 && is_c_contiguous(draws) &&
              draws.ndim() == 2 && draws.shape(0) == B && draws.shape(1) == 1 + k,
          "draws must be a C-contiguous float64 array of shape (B, 1 + num_goals)");
  check_uniforms(draws);

  std::vector<MGTraj> trajs(B);
  int code = -1;
  int64_t cols = -1;
  for (int64_t b = 0; b < B; ++b) {
    py::array g = goals[b], a = achieved[b], r = rl2s[b], dn = dones[b];
    const int gc = goal_dtype_code(g);
    require(code < 0 || gc == code, "all goal arrays must share one dtype");
    code = gc;
    require(goal_dtype_code(a) == code, "achieved must have the dtype of goals");
    require(is_c_contiguous(g) && is_c_contiguous(a), "goal arrays must be C-contiguous");
    require(g.ndim() == 3 && g.shape(0) >= 1 && g.shape(1) == k && g.shape(2) == d + 1,
            "goals must have shape (T+1, num_goals, goal_dim+1)");
    const int64_t T = g.shape(0) - 1;
    int64_t rows_d;  // (T+1) * d; T+1 can be huge for a zero-size array
    require(!__builtin_mul_overflow(T + 1, d, &rows_d) && a.size() == rows_d,
            "achieved must hold (T+1) * goal_dim values");
    check_float32(r, "rl2s");
    require(r.ndim() == 2 && r.shape(0) == T + 1 && r.shape(1) >= 1, "rl2s must be (T+1, 1+A)");
    require(cols < 0 || r.shape(1) == cols, "all rl2s must have the same number of columns");
    cols = r.shape(1);
    check_bool(dn, "dones");
    require(dn.size() == T, "dones must hold T values");
    trajs[b] = MGTraj{g.data(), a.data(), static_cast<const float*>(r.data()),
                      static_cast<const bool*>(dn.data()), T};
  }
  const MGShape sh{k, d, cols};
  std::vector<int64_t> inst(B * k), succ(B * k);
  const double* u = static_cast<const double*>(draws.data());

  auto dispatch = [&](int phase) {
    py::gil_scoped_release release;
    switch (code) {
      case 0:
        run_all<float>(trajs, sh, u, strategy, tol, num_threads, inst, succ, phase);
        break;
      case 1:
        run_all<double>(trajs, sh, u, strategy, tol, num_threads, inst, succ, phase);
        break;
      case 2:
        run_all<int32_t>(trajs, sh, u, strategy, tol, num_threads, inst, succ, phase);
        break;
      case 3:
        run_all<int64_t>(trajs, sh, u, strategy, tol, num_threads, inst, succ, phase);
        break;
    }
  };
  if (B == 0) return py::list();
  dispatch(1);

  std::vector<int64_t> n_goals(B), n_steps(B), n_rl2s(B);
  for (int64_t b = 0; b < B; ++b) {
    n_goals[b] = (trajs[b].new_len + 1) * k * (d + 1);
    n_steps[b] = trajs[b].new_len;
    n_rl2s[b] = (trajs[b].new_len + 1) * cols;
  }
  const BatchField goals_f(py::array(goals[0]).dtype(), n_goals);
  const BatchField rews_f(py::dtype::of<float>(), n_steps), dones_f(py::dtype::of<bool>(), n_steps);
  const BatchField rl2s_f(py::dtype::of<float>(), n_rl2s);
  py::list out;
  for (int64_t b = 0; b < B; ++b) {
    MGTraj& tr = trajs[b];
    const py::ssize_t L = tr.new_len;
    tr.goals_out = goals_f.data(b);
    tr.rews_out = static_cast<float*>(rews_f.data(b));
    tr.dones_out = static_cast<bool*>(dones_f.data(b));
    tr.rl2s_out = static_cast<float*>(rl2s_f.data(b));
    out.append(py::make_tuple(goals_f.view(b, {L + 1, k, d + 1}), rews_f.view(b, {L}),
                              dones_f.view(b, {L}), rl2s_f.view(b, {L + 1, cols}), L));
  }
  dispatch(2);
  return out;
}

}  // namespace

void bind_multigoal(py::module_& m) {
  m.def("relabel_multigoal", &relabel_multigoal, py::arg("goals"), py::arg("achieved"),
        py::arg("rl2s"), py::arg("dones"), py::arg("draws"), py::arg("num_goals"),
        py::arg("goal_dim"), py::arg("strategy"), py::arg("tolerance"), py::arg("num_threads"),
        "Multi-goal hindsight relabeling of a batch of trajectories (GIL released). "
        "Returns one (goals, rews, dones, rl2s, new_len) tuple per trajectory. "
        "Use amago_fast.relabel.MultiGoalRelabeler, which validates its inputs.");
}

}  // namespace relabel
}  // namespace amago_fast
