// keras_optlab's CPU kernels: one pass over θ, g and the slots per optimizer step.
//
// Each op applies one update rule of Goodfellow, Bengio & Courville, Deep Learning
// (2016), ch. 8, to a resource variable and its slots in place, with the same
// floating-point operations in the same order as the keras.ops rule of the
// optimizer's `update_step` (the Python side passes every scalar already rounded
// to T exactly as that rule rounds it). Compiled without FP contraction
// (-ffp-contract=off) the result is therefore bit-identical to the keras.ops rule;
// tests/accel/test_cpu_paths.py checks it.
//
// Why: TensorFlow's fused training kernels evaluate one Eigen expression per slot
// (Adam: three passes over memory, 40 B/param instead of 28), and it has no kernel
// at all for the book's RMSProp or Nesterov-RMSProp. Here each element is loaded,
// updated and stored once, the loop is vectorised by the compiler, and blocks run
// on TensorFlow's intra-op thread pool.
//
// Semantics shared by every op (those of tf.raw_ops.ResourceApply*):
//  * inputs: the resources (variable first, then its slots), the dense gradient,
//    then scalars of the variable's dtype;
//  * the variables are locked (in address order), and a buffer that is shared
//    with a tensor read earlier is copied before it is written (copy-on-write), so
//    a value read before the update keeps its old contents;
//  * shapes and dtypes are checked; an error names the op and the input.
//
// Op names are namespaced ("KerasOptlab>BookApplyAdam") so that they cannot clash
// with another library's ops in TensorFlow's process-wide op registry;
// tf.load_op_library names their Python functions keras_optlab_book_apply_adam etc.
//
// Built on first use by keras_optlab/accel/cpu/_build.py with TensorFlow's own
// compile and link flags (tf.sysconfig) and a portable ISA baseline (see there).

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace keras_optlab {

using tensorflow::DataTypeToEnum;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::Var;

// ------------------------------------------------------------------ update rules
// Rule::Apply(p, g, s, begin, end): p = {θ, slot, ...} (written in place),
// g the gradient, s the scalars; updates elements [begin, end).

// Algorithm 8.2 (momentum): v ← αv − εg; θ ← θ + v.
// Algorithm 8.3 (Nesterov, look-ahead form): v ← αv − εg; θ ← θ + αv − εg.
template <typename T, bool kNesterov>
struct MomentumRule {
  static constexpr int kResources = 2, kScalars = 2;  // lr, momentum
  static void Apply(T* const* p, const T* gp, const T* s, int64_t b, int64_t e) {
    T* __restrict__ w = p[0];
    T* __restrict__ v = p[1];
    const T* __restrict__ g = gp;
    const T lr = s[0], mom = s[1];
    for (int64_t i = b; i < e; ++i) {
      const T step = lr * g[i];
      const T vi = mom * v[i] - step;
      v[i] = vi;
      if (kNesterov) {
        w[i] = w[i] + (mom * vi - step);
      } else {
        w[i] = w[i] + vi;
      }
    }
  }
};

// Algorithm 8.4 (AdaGrad): r ← r + g²; θ ← θ − εg / (δ + √r).
template <typename T>
struct AdagradRule {
  static constexpr int kResources = 2, kScalars = 2;  // lr, epsilon
  static void Apply(T* const* p, const T* gp, const T* s, int64_t b, int64_t e) {
    T* __restrict__ w = p[0];
    T* __restrict__ r = p[1];
    const T* __restrict__ g = gp;
    const T lr = s[0], eps = s[1];
    for (int64_t i = b; i < e; ++i) {
      const T ri = r[i] + g[i] * g[i];
      r[i] = ri;
      w[i] = w[i] - (lr * g[i]) / (std::sqrt(ri) + eps);
    }
  }
};

// Algorithm 8.5 (RMSProp): r ← r + (1 − ρ)(g² − r); θ ← θ − εg / √(δ + r).
template <typename T>
struct RmspropRule {
  static constexpr int kResources = 2, kScalars = 3;  // lr, 1 − rho, epsilon
  static void Apply(T* const* p, const T* gp, const T* s, int64_t b, int64_t e) {
    T* __restrict__ w = p[0];
    T* __restrict__ r = p[1];
    const T* __restrict__ g = gp;
    const T lr = s[0], decay = s[1], eps = s[2];
    for (int64_t i = b; i < e; ++i) {
      const T ri = r[i] + decay * (g[i] * g[i] - r[i]);
      r[i] = ri;
      w[i] = w[i] - (lr * g[i]) / std::sqrt(ri + eps);
    }
  }
};

// Algorithm 8.6 (RMSProp with Nesterov momentum, look-ahead form):
// r ← r + (1 − ρ)(g² − r); u = εg / √(δ + r); v ← αv − u; θ ← θ + αv − u.
template <typename T>
struct NesterovRmspropRule {
  static constexpr int kResources = 3, kScalars = 4;  // lr, 1 − rho, epsilon, momentum
  static void Apply(T* const* p, const T* gp, const T* s, int64_t b, int64_t e) {
    T* __restrict__ w = p[0];
    T* __restrict__ r = p[1];
    T* __restrict__ v = p[2];
    const T* __restrict__ g = gp;
    const T lr = s[0], decay = s[1], eps = s[2], mom = s[3];
    for (int64_t i = b; i < e; ++i) {
      const T ri = r[i] + decay * (g[i] * g[i] - r[i]);
      r[i] = ri;
      const T step = (lr * g[i]) / std::sqrt(ri + eps);
      const T vi = mom * v[i] - step;
      v[i] = vi;
      w[i] = w[i] + (mom * vi - step);
    }
  }
};

// Algorithm 8.7 (Adam), bias corrections folded into the scalars:
// s ← s + (1 − ρ₁)(g − s); r ← r + (1 − ρ₂)(g² − r);
// θ ← θ − (η s) / (√r + δ'),  η = ε√(1 − ρ₂ᵗ)/(1 − ρ₁ᵗ), δ' = δ√(1 − ρ₂ᵗ).
template <typename T>
struct AdamRule {
  static constexpr int kResources = 3, kScalars = 4;  // 1 − β₁, 1 − β₂, η, δ'
  static void Apply(T* const* p, const T* gp, const T* s, int64_t b, int64_t e) {
    T* __restrict__ w = p[0];
    T* __restrict__ m = p[1];
    T* __restrict__ v = p[2];
    const T* __restrict__ g = gp;
    const T d1 = s[0], d2 = s[1], eta = s[2], eps = s[3];
    for (int64_t i = b; i < e; ++i) {
      const T gi = g[i];
      const T mi = m[i] + d1 * (gi - m[i]);
      const T vi = v[i] + d2 * (gi * gi - v[i]);
      m[i] = mi;
      v[i] = vi;
      w[i] = w[i] - (eta * mi) / (std::sqrt(vi) + eps);
    }
  }
};

// ------------------------------------------------------------------ the op kernel

// Makes the variable's buffer exclusively ours before writing it: a tensor read
// from the variable earlier may share it (TF's PrepareToUpdateVariable does the same).
template <typename T>
absl::Status Writable(OpKernelContext* ctx, Var* var, T** out) {
  Tensor* t = var->tensor();
  if (var->copy_on_read_mode.load() || !t->RefCountIsOne()) {
    Tensor copy;
    TF_RETURN_IF_ERROR(ctx->allocate_temp(t->dtype(), t->shape(), &copy));
    std::memcpy(copy.flat<T>().data(), t->flat<T>().data(), sizeof(T) * t->NumElements());
    *t = copy;
  }
  *out = t->flat<T>().data();
  return absl::OkStatus();
}

template <typename T, typename Rule>
class BookApplyOp : public OpKernel {
 public:
  explicit BookApplyOp(OpKernelConstruction* c) : OpKernel(c) {}

  void Compute(OpKernelContext* ctx) override {
    constexpr int K = Rule::kResources;
    const Tensor& grad = ctx->input(K);
    tensorflow::core::RefCountPtr<Var> vars[K];
    std::vector<tensorflow::mutex*> mus;
    for (int k = 0; k < K; ++k) {
      OP_REQUIRES_OK(ctx, LookupResource(ctx, HandleFromInput(ctx, k), &vars[k]));
      mus.push_back(vars[k]->mu());
    }
    std::sort(mus.begin(), mus.end());
    mus.erase(std::unique(mus.begin(), mus.end()), mus.end());
    for (auto* mu : mus) mu->lock();
    struct Unlock {
      std::vector<tensorflow::mutex*>& m;
      ~Unlock() {
        for (auto it = m.rbegin(); it != m.rend(); ++it) (*it)->unlock();
      }
    } unlock{mus};

    T* p[K];
    for (int k = 0; k < K; ++k) {
      const Tensor* t = vars[k]->tensor();
      OP_REQUIRES(ctx, vars[k]->is_initialized,
                  tensorflow::errors::FailedPrecondition(name(), ": resource input ", k,
                                                         " is not initialized"));
      OP_REQUIRES(ctx, t->dtype() == DataTypeToEnum<T>::v(),
                  tensorflow::errors::InvalidArgument(
                      name(), ": resource input ", k, " holds ", DataTypeString(t->dtype()),
                      ", the gradient is ", DataTypeString(DataTypeToEnum<T>::v())));
      OP_REQUIRES(ctx, t->shape() == grad.shape(),
                  tensorflow::errors::InvalidArgument(
                      name(), ": resource input ", k, " has shape ", t->shape().DebugString(),
                      " but the gradient has shape ", grad.shape().DebugString()));
    }
    // Resources may repeat only if a test feeds the same variable twice; writing
    // an aliased buffer through two pointers would break the __restrict__ promise.
    OP_REQUIRES(ctx, static_cast<int>(mus.size()) == K,
                tensorflow::errors::InvalidArgument(name(), ": resources must be distinct"));
    for (int k = 0; k < K; ++k) OP_REQUIRES_OK(ctx, Writable<T>(ctx, vars[k].get(), &p[k]));

    T s[Rule::kScalars];
    for (int j = 0; j < Rule::kScalars; ++j) {
      const Tensor& x = ctx->input(K + 1 + j);
      OP_REQUIRES(ctx, tensorflow::TensorShapeUtils::IsScalar(x.shape()),
                  tensorflow::errors::InvalidArgument(name(), ": scalar input ", j,
                                                      " has shape ", x.shape().DebugString()));
      s[j] = x.scalar<T>()();
    }
    const T* g = grad.flat<T>().data();
    auto work = [&p, g, &s](int64_t begin, int64_t end) { Rule::Apply(p, g, s, begin, end); };
    auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
    // Cost per element in cycles-ish: small tensors stay on the calling thread.
    tensorflow::Shard(workers->num_threads, workers->workers, grad.NumElements(), 8 * K, work);
  }
};

absl::Status NoOutputs(tensorflow::shape_inference::InferenceContext*) { return absl::OkStatus(); }

#define KERAS_OPTLAB_KERNELS(OP, RULE)                                                   \
  REGISTER_KERNEL_BUILDER(                                                             \
      Name(OP).Device(tensorflow::DEVICE_CPU).TypeConstraint<float>("T"),              \
      BookApplyOp<float, RULE<float>>);                                                \
  REGISTER_KERNEL_BUILDER(                                                             \
      Name(OP).Device(tensorflow::DEVICE_CPU).TypeConstraint<double>("T"),             \
      BookApplyOp<double, RULE<double>>)

template <typename T> using Momentum = MomentumRule<T, false>;
template <typename T> using Nesterov = MomentumRule<T, true>;

REGISTER_OP("KerasOptlab>BookApplyMomentum")
    .Input("var: resource").Input("velocity: resource").Input("grad: T")
    .Input("lr: T").Input("momentum: T")
    .Attr("T: {float, double}").SetIsStateful().SetShapeFn(NoOutputs);
KERAS_OPTLAB_KERNELS("KerasOptlab>BookApplyMomentum", Momentum);

REGISTER_OP("KerasOptlab>BookApplyNesterov")
    .Input("var: resource").Input("velocity: resource").Input("grad: T")
    .Input("lr: T").Input("momentum: T")
    .Attr("T: {float, double}").SetIsStateful().SetShapeFn(NoOutputs);
KERAS_OPTLAB_KERNELS("KerasOptlab>BookApplyNesterov", Nesterov);

REGISTER_OP("KerasOptlab>BookApplyAdagrad")
    .Input("var: resource").Input("accumulator: resource").Input("grad: T")
    .Input("lr: T").Input("epsilon: T")
    .Attr("T: {float, double}").SetIsStateful().SetShapeFn(NoOutputs);
KERAS_OPTLAB_KERNELS("KerasOptlab>BookApplyAdagrad", AdagradRule);

REGISTER_OP("KerasOptlab>BookApplyRmsprop")
    .Input("var: resource").Input("accumulator: resource").Input("grad: T")
    .Input("lr: T").Input("one_minus_rho: T").Input("epsilon: T")
    .Attr("T: {float, double}").SetIsStateful().SetShapeFn(NoOutputs);
KERAS_OPTLAB_KERNELS("KerasOptlab>BookApplyRmsprop", RmspropRule);

REGISTER_OP("KerasOptlab>BookApplyNesterovRmsprop")
    .Input("var: resource").Input("accumulator: resource").Input("velocity: resource")
    .Input("grad: T")
    .Input("lr: T").Input("one_minus_rho: T").Input("epsilon: T").Input("momentum: T")
    .Attr("T: {float, double}").SetIsStateful().SetShapeFn(NoOutputs);
KERAS_OPTLAB_KERNELS("KerasOptlab>BookApplyNesterovRmsprop", NesterovRmspropRule);

REGISTER_OP("KerasOptlab>BookApplyAdam")
    .Input("var: resource").Input("m: resource").Input("v: resource").Input("grad: T")
    .Input("one_minus_beta1: T").Input("one_minus_beta2: T").Input("step_size: T")
    .Input("epsilon: T")
    .Attr("T: {float, double}").SetIsStateful().SetShapeFn(NoOutputs);
KERAS_OPTLAB_KERNELS("KerasOptlab>BookApplyAdam", AdamRule);

}  // namespace keras_optlab
