// Single-goal hindsight experience replay (HER), one goal per trajectory, batched.
//
// goals (T+1, d) is the desired goal shown at each step, achieved (T+1, d) the goal-space
// value reached at each step. A selected trajectory (draw u0 < prob) gets one new goal
// g = achieved[s] for all its rows, where s is
//   "final":   T
//   "future":  U{1..T}, and the trajectory is cut at s (every kept transition's goal
//              then lies in its own future, as in HER's "future" strategy)
//   "episode": U{1..T}, no cut
// and rewards are recomputed: reward_t = success_reward if achieved[t+1] is within the
// tolerance of g, else failure_reward. With terminate_on_success, the trajectory also
// ends (done) at its first success. Reference: amago_fast/relabel/reference.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <vector>

#include "relabel/array_checks.hpp"
#include "relabel/batch_outputs.hpp"
#include "relabel/relabel_common.hpp"

namespace py = pybind11;

namespace amago_fast {
namespace relabel {
namespace {

constexpr int kFinal = 1;
constexpr int kFuture = 2;
constexpr int kEpisode = 3;

struct HerParams {
  int strategy;
  double prob, tol;
  float success_reward, failure_reward;
  bool terminate_on_success;
  int64_t d, cols;
};

struct HerTraj {
  const void* achieved = nullptr;
  const float* rl2s = nullptr;
  const bool* dones = nullptr;
  int64_t T = 0;
  // phase 1 (plan)
  bool selected = false;
  bool terminated = false;
  int64_t goal_row = 0;
  int64_t new_len = 0;
  // phase 2 (outputs)
  void* goals_out = nullptr;
  float* rews_out = nullptr;
  bool* dones_out = nullptr;
  float* rl2s_out = nullptr;
};

template <typename S>
void plan_one(HerTraj& tr, const HerParams& p, const double* u) {
  const S* ach = static_cast<const S*>(tr.achieved);
  const int64_t T = tr.T, d = p.d;
  tr.selected = T >= 1 && u[0] < p.prob;
  if (!tr.selected) return;
  tr.goal_row = (p.strategy == kFinal) ? T : 1 + uniform_index(u[1], T);
  tr.new_len = (p.strategy == kFuture) ? tr.goal_row : T;
  if (p.terminate_on_success) {
    const S* g = ach + tr.goal_row * d;
    for (int64_t t = 1; t <= tr.new_len; ++t)
      if (within(ach + t * d, g, d, p.tol)) {
        tr.new_len = t;
        tr.terminated = true;
        break;
      }
  }
}

template <typename S>
void fill_one(const HerTraj& tr, const HerParams& p) {
  const S* ach = static_cast<const S*>(tr.achieved);
  const int64_t d = p.d, C = p.cols, L = tr.new_len;
  const S* g = ach + tr.goal_row * d;
  S* gout = static_cast<S*>(tr.goals_out);
  for (int64_t t = 0; t <= L; ++t) std::memcpy(gout + t * d, g, sizeof(S) * d);
  for (int64_t t = 0; t < L; ++t)
    tr.rews_out[t] = within(ach + (t + 1) * d, g, d, p.tol) ? p.success_reward : p.failure_reward;
  std::memcpy(tr.dones_out, tr.dones, sizeof(bool) * L);
  if (tr.terminated) tr.dones_out[L - 1] = true;
  std::memcpy(tr.rl2s_out, tr.rl2s, sizeof(float) * (L + 1) * C);
  for (int64_t t = 0; t < L; ++t) tr.rl2s_out[(t + 1) * C] = tr.rews_out[t];
}

template <typename S>
void run_all(std::vector<HerTraj>& trajs, const HerParams& p, const double* draws, int num_threads,
             int phase) {
  int64_t rows = 0;
  for (const auto& tr : trajs) rows += tr.T;
  parallel_for(static_cast<int64_t>(trajs.size()), useful_threads(rows, num_threads),
               [&](int64_t b) {
                 if (phase == 1)
                   plan_one<S>(trajs[b], p, draws + 2 * b);
                 else if (trajs[b].selected)
                   fill_one<S>(trajs[b], p);
               });
}

py::list relabel_her(py::list goals, py::list achieved, py::list rl2s, py::list dones,
                     py::array draws, int64_t d, int strategy, double prob, double tol,
                     float success_reward, float failure_reward, bool terminate_on_success,
                     int num_threads) {
  const int64_t B = static_cast<int64_t>(goals.size());
  require(d >= 1 && d < (int64_t{1} << 32), "goal_dim must be in [1, 2**32)");
  require(strategy == kFinal || strategy == kFuture || strategy == kEpisode,
          "strategy must be 1, 2 or 3");
  require(achieved.size() == goals.size() && rl2s.size() == goals.size() &&
              dones.size() == goals.size(),
          "goals, achieved, rl2s and dones must have one entry per trajectory");
  require(draws.dtype().kind() == 'f' && draws.dtype().itemsize() == 8 && is_c_contiguous(draws) &&
              draws.ndim() == 2 && draws.shape(0) == B && draws.shape(1) == 2,
          "draws must be a C-contiguous float64 array of shape (B, 2)");
  check_uniforms(draws);
  if (B == 0) return py::list();

  std::vector<HerTraj> trajs(B);
  int code = -1;
  int64_t cols = -1;
  for (int64_t b = 0; b < B; ++b) {
    py::array g = goals[b], a = achieved[b], r = rl2s[b], dn = dones[b];
    const int gc = goal_dtype_code(g);
    require(code < 0 || gc == code, "all goal arrays must share one dtype");
    code = gc;
    require(goal_dtype_code(a) == code, "achieved must have the dtype of goals");
    require(is_c_contiguous(a), "achieved must be C-contiguous");
    require(g.ndim() >= 1 && g.shape(0) >= 1, "goals must have shape (T+1, ...)");
    const int64_t T = g.shape(0) - 1;
    int64_t rows_d;  // (T+1) * d; T+1 can be huge for a zero-size array
    require(!__builtin_mul_overflow(T + 1, d, &rows_d) && g.size() == rows_d && a.size() == rows_d,
            "goals and achieved must hold (T+1) * goal_dim values");
    check_float32(r, "rl2s");
    require(r.ndim() == 2 && r.shape(0) == T + 1 && r.shape(1) >= 1, "rl2s must be (T+1, 1+A)");
    require(cols < 0 || r.shape(1) == cols, "all rl2s must have the same number of columns");
    cols = r.shape(1);
    check_bool(dn, "dones");
    require(dn.size() == T, "dones must hold T values");
    trajs[b].achieved = a.data();
    trajs[b].rl2s = static_cast<const float*>(r.data());
    trajs[b].dones = static_cast<const bool*>(dn.data());
    trajs[b].T = T;
  }
  const HerParams p{strategy, prob, tol, success_reward, failure_reward, terminate_on_success,
                    d,        cols};
  const double* u = static_cast<const double*>(draws.data());

  auto dispatch = [&](int phase) {
    py::gil_scoped_release release;
    switch (code) {
      case 0:
        run_all<float>(trajs, p, u, num_threads, phase);
        break;
      case 1:
        run_all<double>(trajs, p, u, num_threads, phase);
        break;
      case 2:
        run_all<int32_t>(trajs, p, u, num_threads, phase);
        break;
      case 3:
        run_all<int64_t>(trajs, p, u, num_threads, phase);
        break;
    }
  };
  dispatch(1);

  std::vector<int64_t> n_goals(B), n_steps(B), n_rl2s(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = trajs[b].selected ? trajs[b].new_len : -1;  // -1: no output
    n_goals[b] = (L + 1) * d;
    n_steps[b] = std::max<int64_t>(L, 0);
    n_rl2s[b] = (L + 1) * cols;
  }
  const BatchField goals_f(py::array(goals[0]).dtype(), n_goals);
  const BatchField rews_f(py::dtype::of<float>(), n_steps), dones_f(py::dtype::of<bool>(), n_steps);
  const BatchField rl2s_f(py::dtype::of<float>(), n_rl2s);
  py::list out;
  for (int64_t b = 0; b < B; ++b) {
    HerTraj& tr = trajs[b];
    if (!tr.selected) {
      out.append(py::none());
      continue;
    }
    const py::ssize_t L = tr.new_len;
    tr.goals_out = goals_f.data(b);
    tr.rews_out = static_cast<float*>(rews_f.data(b));
    tr.dones_out = static_cast<bool*>(dones_f.data(b));
    tr.rl2s_out = static_cast<float*>(rl2s_f.data(b));
    out.append(py::make_tuple(goals_f.view(b, {L + 1, d}), rews_f.view(b, {L}),
                              dones_f.view(b, {L}), rl2s_f.view(b, {L + 1, cols}), L));
  }
  dispatch(2);
  return out;
}

}  // namespace

void bind_her(py::module_& m) {
  m.def("relabel_her", &relabel_her, py::arg("goals"), py::arg("achieved"), py::arg("rl2s"),
        py::arg("dones"), py::arg("draws"), py::arg("goal_dim"), py::arg("strategy"),
        py::arg("prob"), py::arg("tolerance"), py::arg("success_reward"), py::arg("failure_reward"),
        py::arg("terminate_on_success"), py::arg("num_threads"),
        "Single-goal HER relabeling of a batch of trajectories (GIL released). Returns, per "
        "trajectory, None (not selected) or (goals, rews, dones, rl2s, new_len). "
        "Use amago_fast.relabel.HERRelabeler, which validates its inputs.");
}

}  // namespace relabel
}  // namespace amago_fast
