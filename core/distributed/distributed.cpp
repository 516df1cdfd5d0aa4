#include "core/distributed/distributed.hpp"

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>

#include "core/base/error.hpp"

#ifdef TAPEGRAD_HAS_MPI
#include <mpi.h>
#endif

namespace tg::distributed {

namespace {

[[maybe_unused]] std::size_t total_numel(const std::vector<Tensor>& params) {
  std::size_t n = 0;
  for (const Tensor& p : params) n += p.numel();
  return n;
}

#ifdef TAPEGRAD_HAS_MPI
// MPI is usable: initialized (by us or by the caller) and not yet finalized.
bool active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail("distributed: ", call, " failed on rank ", rank(), " of ", world_size(), ": ",
       std::string(text, length));
}

// The one buffer gradients and parameters travel in; kept between steps so it is allocated (and its pages
// touched) once.
std::vector<float>& staging() {
  static std::vector<float> buffer;
  return buffer;
}

int to_int_count(std::size_t n, const char* what) {
  if (n > static_cast<std::size_t>(INT32_MAX))
    fail("distributed: ", what, ": ", n, " values exceed MPI's int count");
  return static_cast<int>(n);
}
#endif

}  // namespace

bool available() {
#ifdef TAPEGRAD_HAS_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpirun() {
  // What Open MPI's mpirun (and PMIx or PMI launchers: srun, hydra) put in each rank's environment.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(name)) return true;
  return false;
}

Context::Context([[maybe_unused]] int& argc, [[maybe_unused]] char**& argv) {
#ifdef TAPEGRAD_HAS_MPI
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;  // the caller owns MPI
  // Started on its own: a world of one without MPI. Open MPI's singleton start-up (a PMIx server and its
  // sockets) costs about 0.35 s of every `tapegrad` command, for nothing.
  if (!launched_by_mpirun()) return;
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fail("distributed: MPI_Init_thread failed");
  }
  owns_ = true;
  // Errors come back as codes, which check() turns into tg::Error, instead of MPI aborting on its own.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
#endif
}

Context::~Context() {
#ifdef TAPEGRAD_HAS_MPI
  if (!owns_ || !active()) return;
  // Unwinding from an error while other ranks may be waiting in a collective: MPI_Finalize could wait for
  // them forever, so stop the whole job instead.
  if (std::uncaught_exceptions() > 0 && world_size() > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  MPI_Finalize();
#endif
}

int rank() {
#ifdef TAPEGRAD_HAS_MPI
  if (!active()) return 0;
  int r = 0;
  check(MPI_Comm_rank(MPI_COMM_WORLD, &r), "MPI_Comm_rank");
  return r;
#else
  return 0;
#endif
}

int world_size() {
#ifdef TAPEGRAD_HAS_MPI
  if (!active()) return 1;
  int n = 1;
  check(MPI_Comm_size(MPI_COMM_WORLD, &n), "MPI_Comm_size");
  return n;
#else
  return 1;
#endif
}

int local_world_size() {
#ifdef TAPEGRAD_HAS_MPI
  if (world_size() == 1) return 1;
  MPI_Comm local;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local),
        "MPI_Comm_split_type");
  int n = 1;
  const int code = MPI_Comm_size(local, &n);
  MPI_Comm_free(&local);
  check(code, "MPI_Comm_size (local)");
  return n;
#else
  return 1;
#endif
}

bool is_main() { return rank() == 0; }

void broadcast_parameters([[maybe_unused]] const std::vector<Tensor>& params, [[maybe_unused]] int root) {
#ifdef TAPEGRAD_HAS_MPI
  const int n_ranks = world_size();
  if (n_ranks == 1) return;
  if (root < 0 || root >= n_ranks) fail("broadcast_parameters: root ", root, " is not a rank of ", n_ranks);
  // First the layout (parameter count, total values), so that different models fail with a message
  // instead of a truncated broadcast.
  const std::size_t n = total_numel(params);
  std::uint64_t layout[2] = {params.size(), n};
  check(MPI_Bcast(layout, 2, MPI_UINT64_T, root, MPI_COMM_WORLD), "MPI_Bcast (parameter layout)");
  if (layout[0] != params.size() || layout[1] != n) {
    fail("broadcast_parameters: rank ", rank(), " has ", params.size(), " tensors with ", n, " values, rank ",
         root, " has ", layout[0], " with ", layout[1], "; every rank must build the same model");
  }
  std::vector<float>& buf = staging();
  buf.resize(n);
  std::size_t offset = 0;
  for (const Tensor& p : params) {
    std::copy(p.value().begin(), p.value().end(), buf.begin() + static_cast<std::ptrdiff_t>(offset));
    offset += p.numel();
  }
  check(MPI_Bcast(buf.data(), to_int_count(n, "broadcast_parameters"), MPI_FLOAT, root, MPI_COMM_WORLD),
        "MPI_Bcast (parameters)");
  offset = 0;
  for (const Tensor& p : params) {
    Array& value = p.node()->value;
    std::copy(buf.begin() + static_cast<std::ptrdiff_t>(offset),
              buf.begin() + static_cast<std::ptrdiff_t>(offset + p.numel()), value.begin());
    offset += p.numel();
  }
#endif
}

void allreduce_gradients([[maybe_unused]] const std::vector<Tensor>& params,
                         [[maybe_unused]] std::size_t local_examples) {
#ifdef TAPEGRAD_HAS_MPI
  if (world_size() == 1) return;
  // [ local_examples * grad of every parameter, back to back | local_examples ], summed over ranks: the
  // last slot is then the global example count to divide by.
  const std::size_t n = total_numel(params);
  std::vector<float>& buf = staging();
  buf.resize(n + 1);
  const auto weight = static_cast<float>(local_examples);
  std::size_t offset = 0;
  for (const Tensor& p : params) {
    float* out = buf.data() + offset;
    if (local_examples == 0) {
      std::fill(out, out + p.numel(), 0.f);  // not even NaNs of a rank without examples get through
    } else {
      const float* g = p.grad().data();  // grad() allocates zeros for a parameter without one yet
      for (std::size_t k = 0; k < p.numel(); ++k) out[k] = weight * g[k];
    }
    offset += p.numel();
  }
  buf[n] = weight;
  check(MPI_Allreduce(MPI_IN_PLACE, buf.data(), to_int_count(n + 1, "allreduce_gradients"), MPI_FLOAT,
                      MPI_SUM, MPI_COMM_WORLD),
        "MPI_Allreduce (gradients)");
  const float total = buf[n];
  const float scale = total > 0.f ? 1.f / total : 0.f;
  offset = 0;
  for (const Tensor& p : params) {
    p.grad();  // allocated
    float* g = p.node()->grad.data();
    const float* in = buf.data() + offset;
    for (std::size_t k = 0; k < p.numel(); ++k) g[k] = in[k] * scale;
    offset += p.numel();
  }
#endif
}

void average_values([[maybe_unused]] const std::vector<Tensor>& tensors) {
#ifdef TAPEGRAD_HAS_MPI
  if (world_size() == 1) return;
  std::vector<double> buf;
  buf.reserve(total_numel(tensors));
  for (const Tensor& t : tensors) {
    const float* v = t.value().data();
    buf.insert(buf.end(), v, v + t.numel());
  }
  if (buf.empty()) return;
  check(MPI_Allreduce(MPI_IN_PLACE, buf.data(), to_int_count(buf.size(), "average_values"), MPI_DOUBLE,
                      MPI_SUM, MPI_COMM_WORLD),
        "MPI_Allreduce (average_values)");
  const double world = world_size();
  std::size_t offset = 0;
  for (const Tensor& t : tensors) {
    float* v = t.node()->value.data();
    for (std::size_t k = 0; k < t.numel(); ++k) v[k] = static_cast<float>(buf[offset + k] / world);
    offset += t.numel();
  }
#endif
}

void allreduce_sum([[maybe_unused]] std::span<double> values) {
#ifdef TAPEGRAD_HAS_MPI
  if (world_size() == 1 || values.empty()) return;
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), to_int_count(values.size(), "allreduce_sum"), MPI_DOUBLE,
                      MPI_SUM, MPI_COMM_WORLD),
        "MPI_Allreduce (sum)");
#endif
}

void barrier() {
#ifdef TAPEGRAD_HAS_MPI
  if (world_size() == 1) return;
  check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void abort(int code) {
#ifdef TAPEGRAD_HAS_MPI
  if (active()) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

}  // namespace tg::distributed
